//! How a blocking call runs ([`run`]), and how a deferred one is submitted ([`submit_all`]).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;

use super::engine::Shared;
use super::feed::{decode, Feed};
use super::handles::MapResult;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::func::{self, TaskFn};

/// Runs every input to an outcome, stopping early (after the running tasks) on the first
/// failure if `fail_fast`: then the result holds only that failure.
///
/// The caller feeds its batches, takes its outcomes and decodes them with the state unlocked,
/// and between times takes its [`turn`](Shared::turn): it drives a step, or sleeps while
/// another caller does.
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
    let hint = inputs.size_hint();
    let mut feed = match Feed::start::<F, R>(shared, inputs, false, None) {
        Ok(feed) => feed,
        Err(inputs) => return closed_outcomes(name, inputs, fail_fast),
    };
    let job = feed.job();
    let codec = func::codec::<F, Args, R>();
    // Room for every result at once (growing by doubling would copy them, and fault in
    // fresh pages, several times over); a hint beyond reason is not taken at its word.
    let mut results: Vec<Option<Result<R, Error>>> = Vec::with_capacity(hint.0.min(1 << 20));
    let mut arrived = VecDeque::new();
    let mut first_failure: Option<usize> = None;
    loop {
        let stopping = fail_fast && first_failure.is_some();
        while !stopping && shared.wants_more(job) && feed.feed(shared) {}
        let mut state = shared.state();
        state.jobs.take_arrived(job, &mut arrived);
        if stopping {
            // Start nothing more; what runs finishes, so that no work goes on behind the
            // caller's back.
            feed.stop();
            state.jobs.drop_queued(job);
        }
        let done = feed.is_done() && state.jobs.outstanding(job) == 0;
        let epoch = state.epoch();
        drop(state);
        let mut failed = false;
        for (index, outcome) in arrived.drain(..) {
            let result = decode(name, codec, index, outcome);
            if result.is_err() && first_failure.is_none_or(|first| index < first) {
                failed |= first_failure.is_none();
                first_failure = Some(index);
            }
            if results.len() <= index {
                results.resize_with(index + 1, || None);
            }
            results[index] = Some(result);
        }
        if done {
            break;
        }
        if !(fail_fast && failed) {
            shared.turn(epoch, None);
        }
    }
    shared.cancel(job, false);
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
    shared: &Arc<Shared>,
    inputs: impl Iterator<Item = Args>,
) -> Result<MapResult<R>, Error>
where
    F: TaskFn<Args, R>,
    Args: Wire,
    R: Wire,
{
    let name = func::name::<F>();
    let Ok(mut feed) = Feed::start::<F, R>(shared, inputs, false, None) else {
        return Err(Error::new(name, ErrorKind::Closed));
    };
    let job = feed.job();
    while feed.feed(shared) {}
    if let Some(index) = feed.encode_failure {
        shared.cancel(job, false);
        let kind = ErrorKind::EncodeArgs(feed.encode_message.unwrap_or_default());
        return Err(Error::new(name, kind).with_task(index));
    }
    // Hand the tasks to idle workers now, so that they run while the caller goes on; unless
    // another caller drives, who hands them out at once (the bell woke it).
    if let Some(mut driver) = shared.try_drive() {
        let epoch = shared.state().epoch();
        driver.step_until(epoch, Some(std::time::Instant::now()));
    }
    Ok(MapResult {
        shared: Arc::clone(shared),
        job,
        name,
        codec: func::codec::<F, Args, R>(),
        results: Vec::new(),
        len: feed.next,
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
