use lambda_parallel::{lambda_parallel, Error, JoinHandle};

#[lambda_parallel]
fn parse(text: String) -> Result<u32, String> {
    text.parse().map_err(|_| text)
}

fn main() {
    assert_eq!(parse("7".into()), Ok(7));
    let _: fn(String) -> Result<JoinHandle<Result<u32, String>>, Error> = parse::spawn;
}
