//! Arguments and results far larger than a pipe's buffer cross without deadlock or corruption.

use lambda_parallel::lambda_parallel;
use lambda_parallel_tests::pattern;

const LEN: usize = 64 << 20;

#[lambda_parallel]
fn reverse(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.reverse();
    bytes
}

#[test]
fn argument_and_result_of_64_mib_round_trip() {
    let input = pattern(LEN, 7);
    let mut expected = input.clone();
    expected.reverse();
    let output = reverse::spawn(input).unwrap().join().unwrap();
    assert_eq!(output.len(), LEN);
    assert!(
        output == expected,
        "the 64 MiB result differs from the expected bytes"
    );
}

#[lambda_parallel]
fn generate(len: u64, seed: u8) -> Vec<u8> {
    pattern(usize::try_from(len).unwrap(), seed)
}

#[test]
fn result_of_64_mib_made_in_the_worker() {
    let output = generate::spawn(LEN as u64, 3).unwrap().join().unwrap();
    assert!(
        output == pattern(LEN, 3),
        "the 64 MiB result differs from the expected bytes"
    );
}
