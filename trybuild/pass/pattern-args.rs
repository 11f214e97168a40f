use lambda_parallel::lambda_parallel;

#[lambda_parallel]
fn add((a, b): (u32, u32), _: u8, mut c: u32, ref d: u32) -> u32 {
    c += *d;
    a + b + c
}

fn main() {
    assert_eq!(add((1, 2), 0, 3, 4), 10);
    let _: fn((u32, u32), u8, u32, u32) -> _ = add::spawn;
}
