//! How a blocking call runs ([`run`]), and how a deferred one is submitted ([`submit_all`]).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Instant;

use super::engine::Shared;
use super::feed::{decode, Feed};
use super::handles::MapResult;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::func::{self, TaskFn};

/// Runs every input to an outcome, stopping early (after the running tasks) on the first
/// failure if `fail_fast`: then the result holds only that failure.
pub(super) fn run<F, Args, R>(
    shared: &Shared,
    inputs: impl Iterator<Item = Args>,
    fail_fast: bool,
) -> Vec<Result<R, Error>>
where
    F: TaskFn<Args, R>,
    Args: Wire,
    R: Wire,
{
    let name = func::name::<F>();
    let codec = func::codec::<F, Args, R>();
    let mut core = shared.lock();
    if core.is_closed() {
        drop(core);
        return closed_outcomes(name, inputs, fail_fast);
    }
    let hint = inputs.size_hint();
    let mut feed = Feed::start::<F, R>(&mut core, inputs);
    let job = feed.job();
    // Room for every result at once (growing by doubling would copy them, and fault in
    // fresh pages, several times over); a hint beyond reason is not taken at its word.
    let mut results: Vec<Option<Result<R, Error>>> = Vec::with_capacity(hint.0.min(1 << 20));
    let mut arrived = VecDeque::new();
    let mut first_failure: Option<usize> = None;
    loop {
        while (!fail_fast || first_failure.is_none()) && core.wants_more() && feed.feed(&mut core) {
        }
        core.jobs.take_arrived(job, &mut arrived);
        for (index, outcome) in arrived.drain(..) {
            let result = decode(name, codec, index, outcome);
            if result.is_err() && first_failure.is_none_or(|first| index < first) {
                first_failure = Some(index);
            }
            if results.len() <= index {
                results.resize_with(index + 1, || None);
            }
            results[index] = Some(result);
        }
        if fail_fast && first_failure.is_some() {
            // Start nothing more; what runs finishes, so that no work goes on behind the
            // caller's back.
            feed.stop();
            core.jobs.drop_queued(job);
        }
        if feed.is_done() && core.jobs.outstanding(job) == 0 {
            break;
        }
        core.drive(None);
    }
    core.cancel(job, false);
    drop(core);
    match first_failure {
        Some(index) if fail_fast => match results.swap_remove(index) {
            Some(err) => vec![err],
            None => unreachable!("the failure was recorded"),
        },
        _ => results.into_iter().flatten().collect(),
    }
}

/// Submits every input, and returns a handle to the outcomes.
pub(super) fn submit_all<F, Args, R>(
    shared: &Shared,
    inputs: impl Iterator<Item = Args>,
) -> Result<MapResult<'_, R>, Error>
where
    F: TaskFn<Args, R>,
    Args: Wire,
    R: Wire,
{
    let name = func::name::<F>();
    let mut core = shared.lock();
    if core.is_closed() {
        return Err(Error::new(name, ErrorKind::Closed));
    }
    let mut feed = Feed::start::<F, R>(&mut core, inputs);
    let job = feed.job();
    while feed.feed(&mut core) {}
    if let Some(index) = feed.encode_failure {
        core.cancel(job, false);
        let kind = ErrorKind::EncodeArgs(feed.encode_message.unwrap_or_default());
        return Err(Error::new(name, kind).with_task(index));
    }
    // Hand the tasks to idle workers now, so that they run while the caller goes on.
    core.drive(Some(Instant::now()));
    let len = feed.next;
    drop(core);
    Ok(MapResult {
        shared,
        job,
        name,
        codec: func::codec::<F, Args, R>(),
        results: Vec::new(),
        len,
        _output: PhantomData,
    })
}

/// What a call on a closed pool gives: its one failure if `fail_fast`, else one per input.
fn closed_outcomes<R>(
    name: &'static str,
    inputs: impl Iterator,
    fail_fast: bool,
) -> Vec<Result<R, Error>> {
    let closed = || Error::new(name, ErrorKind::Closed);
    if fail_fast {
        return vec![Err(closed())];
    }
    // One outcome per input, as `map_each` promises.
    (0..inputs.count())
        .map(|index| Err(closed().with_task(index)))
        .collect()
}
