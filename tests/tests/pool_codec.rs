//! A value that cannot cross the pipe fails its own task, named by its index, and no other.

use std::collections::BTreeMap;

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::{Flattened, Untagged};

fn flattened() -> Flattened {
    Flattened {
        id: 1,
        extra: BTreeMap::from([("a".into(), 2)]),
    }
}

#[lambda_parallel]
fn flattened_at(target: u32, task: u32) -> Option<Flattened> {
    (task == target).then(flattened)
}

#[test]
fn result_that_cannot_be_encoded_fails_its_task_and_the_pool_goes_on() {
    let pool = Pool::builder().workers(2).chunk_size(3).build().unwrap();
    let outcomes = pool.starmap_each(flattened_at, (0..9).map(|task| (4, task)));
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 4 {
            let err = outcome.as_ref().unwrap_err();
            assert!(err.is_codec(), "{err}");
            assert_eq!(err.task_index(), Some(4));
            assert!(
                err.to_string().starts_with(
                    "task 4 of worker `pool_codec::flattened_at` could not encode its result: "
                ),
                "{err}"
            );
        } else {
            assert!(outcome.as_ref().unwrap().is_none());
        }
    }
    assert!(pool.apply(flattened_at, (0, 1)).unwrap().is_none());
}

#[test]
fn map_fails_with_the_task_whose_result_cannot_be_encoded() {
    let pool = Pool::new(2).unwrap();
    let err = pool
        .starmap(flattened_at, (0..6).map(|task| (2, task)))
        .unwrap_err();
    assert!(err.is_codec());
    assert_eq!(err.task_index(), Some(2));
}

#[lambda_parallel]
fn untagged(x: u32) -> Untagged {
    Untagged::Number(x)
}

#[test]
fn result_that_cannot_be_decoded_is_a_codec_error_of_its_task() {
    let pool = Pool::new(1).unwrap();
    let err = pool.map(untagged, [5]).unwrap_err();
    assert!(err.is_codec());
    assert_eq!(err.task_index(), Some(0));
    assert!(
        err.to_string().starts_with(
            "failed to decode the result of task 0 of worker `pool_codec::untagged`: "
        ),
        "{err}"
    );
}

#[lambda_parallel]
fn id(value: Option<Flattened>) -> u32 {
    value.map_or(0, |value| value.id)
}

#[test]
fn argument_that_cannot_be_encoded_fails_only_its_task() {
    let pool = Pool::builder().workers(2).chunk_size(4).build().unwrap();
    let inputs = (0..8).map(|i| (i == 5).then(flattened));
    let outcomes = pool.map_each(id, inputs);
    assert_eq!(outcomes.len(), 8);
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 5 {
            let err = outcome.as_ref().unwrap_err();
            assert!(err.is_codec(), "{err}");
            assert_eq!(err.task_index(), Some(5));
            assert!(
                err.to_string().starts_with(
                    "failed to encode the arguments of task 5 of worker `pool_codec::id`: "
                ),
                "{err}"
            );
        } else {
            assert_eq!(*outcome.as_ref().unwrap(), 0);
        }
    }
}

#[test]
fn map_fails_with_the_task_whose_argument_cannot_be_encoded() {
    let pool = Pool::new(2).unwrap();
    let err = pool
        .map(id, (0..4).map(|i| (i == 2).then(flattened)))
        .unwrap_err();
    assert!(err.is_codec());
    assert_eq!(err.task_index(), Some(2));
}

#[test]
fn apply_async_with_an_argument_that_cannot_be_encoded_fails_at_once() {
    let pool = Pool::new(1).unwrap();
    let err = pool.apply_async(id, (Some(flattened()),)).unwrap_err();
    assert!(err.is_codec());
    assert_eq!(pool.apply(id, (None,)).unwrap(), 0);
}

#[lambda_parallel]
fn takes_untagged(value: Untagged) -> u32 {
    match value {
        Untagged::Number(n) => n,
        Untagged::Text(_) => 0,
    }
}

#[test]
fn argument_that_cannot_be_decoded_in_the_worker_fails_only_its_task() {
    let pool = Pool::new(1).unwrap();
    let outcomes = pool.map_each(takes_untagged, [Untagged::Number(1)]);
    let err = outcomes[0].as_ref().unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert!(
        err.to_string().starts_with(
            "task 0 of worker `pool_codec::takes_untagged` could not decode its arguments: "
        ),
        "{err}"
    );
    assert_eq!(pool.apply(id, (None,)).unwrap(), 0);
}
