//! The ring on its own, both ends in one process.

use super::*;
use crate::codec::Codec;
use crate::transport::channel::Up;
use crate::wire::frame;
use crate::wire::outcome::Status;

fn frame_of(tag: Up, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let start = frame::begin(&mut buf, tag);
    buf.extend_from_slice(payload);
    frame::finish(&mut buf, start);
    buf
}

fn pair() -> (RingReader, RingWriter) {
    let (reader, fd) = RingReader::create().unwrap();
    let writer = RingWriter::map(&fd).unwrap();
    (reader, writer)
}

#[test]
#[allow(clippy::cast_possible_truncation, reason = "any bytes will do")]
fn frames_cross_in_order_and_wrap() {
    let (mut reader, mut writer) = pair();
    // Frames of odd sizes, many times round the ring, each read back whole.
    for round in 0..5000_usize {
        let payload: Vec<u8> = (0..(round * 37) % 700).map(|i| (i ^ round) as u8).collect();
        let frame = frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), &payload);
        assert!(writer.fits(frame.len()));
        writer.push(&frame);
        reader.refresh();
        assert_eq!(
            reader.next::<Up>().unwrap(),
            Some((
                Up::Outcome(Status::Value(Codec::DEFAULT)),
                Payload::copy_of(&payload)
            ))
        );
        reader.release();
    }
    assert_eq!(reader.next::<Up>().unwrap(), None);
}

#[test]
fn a_full_ring_keeps_room_for_the_switch_to_the_pipe() {
    let (mut reader, mut writer) = pair();
    let frame = frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), &[7; 1000]);
    let mut pushed = 0;
    while writer.fits(frame.len()) {
        writer.push(&frame);
        pushed += 1;
    }
    assert_eq!(pushed, CAPACITY / frame.len());
    writer.push(&frame_of(Up::ToPipe, &[]));
    reader.refresh();
    for _ in 0..pushed {
        assert_eq!(
            reader.next::<Up>().unwrap().unwrap().0,
            Up::Outcome(Status::Value(Codec::DEFAULT))
        );
    }
    assert_eq!(
        reader.next::<Up>().unwrap(),
        Some((Up::ToPipe, Payload::copy_of(&[])))
    );
    // Nothing is freed until the reader says so.
    assert!(!writer.fits(frame.len()));
    reader.release();
    assert!(writer.fits(frame.len()));
}

#[test]
fn a_writer_waits_for_room_until_the_reader_makes_it() {
    let (mut reader, mut writer) = pair();
    let frame = frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), &[1; 4000]);
    while writer.fits(frame.len()) {
        writer.push(&frame);
    }
    assert!(!writer.wait_for_room(frame.len(), Duration::from_millis(1)));
    let waiter = std::thread::spawn(move || {
        // Long enough never to time out on a working machine: `release` wakes it.
        while !writer.wait_for_room(frame.len(), Duration::from_secs(60)) {}
        writer
    });
    reader.refresh();
    let mut read = 0;
    while !waiter.is_finished() {
        if reader.next::<Up>().unwrap().is_some() {
            read += 1;
        }
        reader.release();
        std::thread::yield_now();
    }
    let mut writer = waiter.join().unwrap();
    assert!(read >= 1);
    assert!(writer.fits(4009));
}

#[test]
fn a_worker_sees_posts_and_ends_its_spins_with_or_without_the_single_task() {
    let (reader, writer) = pair();
    for single in [false, true, false] {
        reader.single(single);
        let seen = writer.posted();
        // Nothing posted: the spin ends, at `LINGER` or `STRETCH` (it is bounded either way).
        assert!(!writer.posted_since(seen));
        reader.post();
        assert!(writer.posted_since(seen));
        assert_eq!(writer.posted(), seen.wrapping_add(1));
    }
}

#[test]
fn one_bell_per_sleep() {
    let (mut reader, writer) = pair();
    assert!(!writer.take_sleeping(false));
    assert!(!reader.sleep(Wake::EachOutcome));
    assert!(writer.take_sleeping(false));
    assert!(!writer.take_sleeping(false));
    reader.sleep(Wake::EachOutcome);
    reader.wake();
    assert!(!writer.take_sleeping(true));
}

#[test]
fn a_pool_that_wants_batch_ends_is_rung_at_the_end_of_a_batch() {
    let (mut reader, mut writer) = pair();
    assert!(!reader.sleep(Wake::BatchEnd));
    writer.push(&frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), b"x"));
    assert!(!writer.take_sleeping(false), "rung before the batch's end");
    assert!(writer.take_sleeping(true));
    assert!(!writer.take_sleeping(true), "rung twice for one sleep");
}

#[test]
fn a_pool_that_wants_batch_ends_is_rung_once_its_ring_is_half_full() {
    let (mut reader, mut writer) = pair();
    assert!(!reader.sleep(Wake::BatchEnd));
    let frame = frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), &[7; 4000]);
    let mut rung = false;
    let mut published = 0;
    while !rung {
        assert!(writer.fits(frame.len()), "filled without a bell");
        writer.push(&frame);
        published += frame.len();
        rung = writer.take_sleeping(false);
    }
    assert!(published >= CAPACITY / 2 && published < CAPACITY / 2 + frame.len());
}

#[test]
fn sleep_sees_a_frame_already_published() {
    let (mut reader, mut writer) = pair();
    writer.push(&frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), b"x"));
    assert!(reader.sleep(Wake::BatchEnd));
}

#[test]
fn garbage_in_the_ring_is_a_bad_frame() {
    let (mut reader, mut writer) = pair();
    writer.push(&[99; 20]);
    reader.refresh();
    assert!(matches!(reader.next::<Up>(), Err(FrameError::BadHeader(_))));

    let (mut reader, mut writer) = pair();
    // A true header that claims more than the ring holds of the frame.
    let mut lying = frame::header(Up::Outcome(Status::Value(Codec::DEFAULT)), 200).to_vec();
    lying.extend_from_slice(b"abc");
    writer.push(&lying);
    reader.refresh();
    assert!(matches!(
        reader.next::<Up>(),
        Err(FrameError::Truncated { .. })
    ));

    let (mut reader, writer) = pair();
    writer
        .map
        .control()
        .tail
        .0
        .store(CAPACITY as u64 * 2, Ordering::Release);
    reader.refresh();
    assert_eq!(
        reader.next::<Up>(),
        Err(FrameError::Overfull(CAPACITY as u64 * 2))
    );
}

/// A worker's code may write anything anywhere in its ring at any moment. While another thread
/// does so as fast as it can, the reader gives frames or errors, never a crash, and never
/// sizes anything beyond the ring by what it read.
#[test]
#[allow(clippy::cast_possible_truncation, reason = "any bytes will do")]
fn scribbling_while_the_reader_reads_gives_frames_or_errors() {
    let (mut reader, writer) = pair();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scribbler = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            let map = &writer.map;
            while !stop.load(Ordering::Relaxed) {
                let at = next();
                let junk: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
                map.write(at, &junk);
                let tail = map.control().tail.0.load(Ordering::Relaxed);
                let mut published = tail.wrapping_add(next() % 512);
                if next() % 16 == 0 {
                    // A proper frame now and then, so that some reads succeed.
                    let frame = frame_of(Up::Outcome(Status::Value(Codec::DEFAULT)), b"ok");
                    map.write(tail, &frame);
                    published = tail + frame.len() as u64;
                }
                map.control().tail.0.store(published, Ordering::Release);
            }
        })
    };
    let (mut frames, mut errors) = (0_u32, 0_u32);
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    while std::time::Instant::now() < until {
        reader.refresh();
        match reader.next::<Up>() {
            Ok(Some((_, payload))) => {
                assert!(payload.len() <= CAPACITY);
                frames += 1;
            }
            Ok(None) => {}
            Err(_) => {
                errors += 1;
                // Start afresh from what the scribbler published last.
                reader.head = reader.tail;
            }
        }
        reader.release();
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    assert!(frames + errors > 0, "the reader read nothing");
}

mod properties {
    //! Whatever a worker writes into its ring, and whatever it claims to have published, the
    //! reader gives frames (none larger than the ring) or errors, never a panic.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_ring_contents_give_frames_or_errors(
            junk in prop::collection::vec(any::<u8>(), 0..2000),
            at in any::<u64>(),
            claimed in any::<u64>(),
        ) {
            let (mut reader, writer) = pair();
            writer.map.write(at, &junk[..junk.len().min(CAPACITY)]);
            writer.map.control().tail.0.store(claimed, Ordering::Release);
            writer.map.control().head.0.store(at, Ordering::Release);
            reader.head = at;
            for _ in 0..16 {
                reader.refresh();
                match reader.next::<Up>() {
                    Ok(Some((_, payload))) => prop_assert!(payload.len() <= CAPACITY),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
