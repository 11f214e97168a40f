use lambda_parallel::lambda_parallel;

fn main() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Local(u32);

    #[lambda_parallel]
    fn wrap(x: u32) -> Local {
        Local(x)
    }

    assert_eq!(wrap(3).0, 3);
    let _ = wrap::spawn;
}
