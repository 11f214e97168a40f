mod reexport {
    pub use lambda_parallel as lp;
}

extern crate lambda_parallel as renamed;

#[renamed::lambda_parallel(crate = reexport::lp)]
fn double(x: u32) -> u32 {
    x * 2
}

#[renamed::lambda_parallel(crate = "crate::reexport::lp")]
fn triple(x: u32) -> u32 {
    x * 3
}

fn main() {
    let _ = (double(1), double::spawn, triple(1), triple::spawn);
}
