use lambda_parallel::lambda_parallel;

#[lambda_parallel]
#[cfg(any())]
fn gone(x: NotEvenAType) -> u32 {
    x
}

// Both namespaces are free of `gone`, or these would clash.
#[allow(non_camel_case_types)]
struct gone {}
fn gone() {}

#[lambda_parallel]
#[cfg_attr(any(), cfg(any()))]
#[cfg_attr(all(), inline)]
fn kept(x: u32) -> u32 {
    x
}

fn main() {
    let _ = (gone {}, gone(), kept(1), kept::spawn);
}
