use lambda_parallel::lambda_parallel;

#[lambda_parallel]
async fn fetch(url: String) -> String {
    url
}

fn main() {}
