use lambda_parallel::lambda_parallel;

struct Hasher;

impl Hasher {
    #[lambda_parallel]
    fn hash(&self, input: String) -> u64 {
        input.len() as u64
    }
}

fn main() {}
