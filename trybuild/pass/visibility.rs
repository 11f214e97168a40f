mod workers {
    use lambda_parallel::lambda_parallel;

    #[lambda_parallel]
    pub(crate) fn double(x: u32) -> u32 {
        x * 2
    }
}

fn main() {
    assert_eq!(workers::double(2), 4);
    let _ = workers::double::spawn;
}
