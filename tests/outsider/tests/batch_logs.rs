//! The `record failed` WARN events of `lambda::BatchProcessor`, caught with a `tracing`
//! subscriber. Alone in its binary: `tracing` caches each callsite's interest process-wide, so
//! a thread-local subscriber (`with_default`) misses events while other tests run at once.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_runtime::LambdaEvent;

mod common;

use common::*;

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_failure_is_a_warn_event_with_its_fields() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = sqs_event(&[
        ("good", None, job(1, "ok")),
        ("bug", None, job(2, "panic")),
        ("crash", None, job(3, "abort")),
        ("refused", None, job(4, "fail")),
    ]);
    let response = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(handler(
            &processor(),
            LambdaEvent::new(event, context(Duration::from_secs(60))),
        ))
    })
    .unwrap();
    assert_eq!(failed_ids(&response), ["bug", "crash", "refused"]);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("record failed"))
        .collect();
    assert_eq!(lines.len(), 3, "{logs}");
    assert!(lines.iter().all(|line| line.contains("WARN")), "{logs}");
    let bug = lines
        .iter()
        .find(|line| line.contains("record_id=\"bug\""))
        .expect(&logs);
    assert!(
        bug.contains("job 2 hit a bug") && bug.contains("task=1"),
        "{bug}"
    );
    assert!(bug.contains("panic_location=tests/common/mod.rs:"), "{bug}");
    let crash = lines
        .iter()
        .find(|line| line.contains("record_id=\"crash\""))
        .expect(&logs);
    assert!(crash.contains("SIGABRT"), "{crash}");
    let refused = lines
        .iter()
        .find(|line| line.contains("record_id=\"refused\""))
        .expect(&logs);
    assert!(
        refused.contains("job 4 refused") && refused.contains("run_job"),
        "{refused}"
    );
}
