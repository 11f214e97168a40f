//! Large arguments and results cross a pool's pipes, several at once, without deadlock.

use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::pattern;

const LEN: usize = 8 << 20;

#[lambda_parallel]
fn reverse(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.reverse();
    bytes
}

#[test]
fn several_apply_async_of_8_mib_each_way_at_once() {
    // More calls than workers: one waits, queued, while the others' bytes cross.
    let pool = Pool::new(2).unwrap();
    let inputs: Vec<Vec<u8>> = (1..=3).map(|seed| pattern(LEN, seed)).collect();
    let handles: Vec<_> = inputs
        .iter()
        .map(|input| pool.apply_async(reverse, (input.clone(),)).unwrap())
        .collect();
    // Taken last first: the others' results wait in the pool meanwhile.
    for (handle, mut expected) in handles.into_iter().zip(inputs).rev() {
        expected.reverse();
        let output = handle.get().unwrap();
        assert!(
            output == expected,
            "a result differs from its reversed input"
        );
    }
}
