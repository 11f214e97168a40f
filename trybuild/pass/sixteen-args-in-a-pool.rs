// The most arguments the attribute accepts, and a pool takes the same function.
use lambda_parallel::{lambda_parallel, Pool};

#[lambda_parallel]
#[rustfmt::skip]
fn sum(
    a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8,
    i: u8, j: u8, k: u8, l: u8, m: u8, n: u8, o: u8, p: u8,
) -> u8 {
    a + b + c + d + e + f + g + h + i + j + k + l + m + n + o + p
}

fn main() {
    let _starmap = |pool: &Pool| pool.starmap(sum, [(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)]);
    let _spawn = || sum::spawn(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
}
