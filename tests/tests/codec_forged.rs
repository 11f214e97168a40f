//! A worker is untrusted input: a payload that lies about its lengths, ends early or holds the
//! wrong kind of value is an `Err` for its task, never an abort, and the memory that decoding it
//! takes stays bounded by what arrived. The same holds for a worker decoding its arguments.
//!
//! The lies are told through serde: each `Forged` value serializes as something its type does not
//! deserialize from, declaring lengths that it does not fill. A counting allocator measures the
//! caller's peak heap while it decodes them, so this binary has one `#[test]`, which runs its
//! checks in order, with nothing else allocating beside them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use lambda_parallel::{lambda_parallel, Pool};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the counters are only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns what it returned with the peak heap growth during it, in bytes.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let value = f();
    (value, PEAK.load(Ordering::Relaxed) - before)
}

/// More than decoding any of the forged payloads needs (a few KiB), and far less than what the
/// lengths they declare would reserve: 100 levels of 1 MiB each, serde's cap per collection.
const BOUND: usize = 8 << 20;

/// What a lying worker or caller sends, and what the receiving side expects instead.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// 100 nested sequences, each declaring `u32::MAX` elements and holding one.
    NestedLengths,
    /// A map declaring `u32::MAX` entries and holding one.
    MapLength,
    /// A 3-tuple that holds one element.
    Truncated,
    /// A string where a number is expected.
    WrongKind,
}

/// Sent as the [`Lie`] it holds; read back as a value that the lie cannot fill.
#[derive(Debug)]
struct Forged(Lie);

/// What a [`Forged`] value is read back as.
#[derive(Debug, Deserialize)]
enum Expected {
    #[allow(dead_code, reason = "only decoded")]
    Nest(Nest),
    #[allow(dead_code, reason = "only decoded")]
    Map(HashMap<String, u64>),
    #[allow(dead_code, reason = "only decoded")]
    Triple(u64, u64, u64),
    #[allow(dead_code, reason = "only decoded")]
    Number(u64),
}

/// Each level holds a sequence of levels.
#[derive(Debug, Deserialize)]
struct Nest(#[allow(dead_code, reason = "only decoded")] Vec<Nest>);

/// One level of [`Lie::NestedLengths`]: a sequence declaring `u32::MAX` elements, holding one.
struct Liar(usize);

impl Serialize for Liar {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(u32::MAX as usize))?;
        if self.0 > 0 {
            seq.serialize_element(&Liar(self.0 - 1))?;
        }
        seq.end()
    }
}

impl Serialize for Forged {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let variant = |index, name| (index, name);
        let (index, name) = match self.0 {
            Lie::NestedLengths => variant(0, "Nest"),
            Lie::MapLength => variant(1, "Map"),
            Lie::Truncated => variant(2, "Triple"),
            Lie::WrongKind => variant(3, "Number"),
        };
        serializer.serialize_newtype_variant("Expected", index, name, &Body(self.0))
    }
}

/// The body of a [`Forged`] variant.
struct Body(Lie);

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Lie::NestedLengths => Liar(100).serialize(serializer),
            Lie::MapLength => {
                let mut map = serializer.serialize_map(Some(u32::MAX as usize))?;
                map.serialize_entry("one", &1_u64)?;
                map.end()
            }
            Lie::Truncated => {
                let mut tuple = serializer.serialize_tuple(3)?;
                tuple.serialize_element(&1_u64)?;
                tuple.end()
            }
            Lie::WrongKind => serializer.serialize_str("seven"),
        }
    }
}

impl<'de> Deserialize<'de> for Forged {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Expected::deserialize(deserializer)?;
        Err(serde::de::Error::custom("a forged value decoded"))
    }
}

const LIES: [Lie; 4] = [
    Lie::NestedLengths,
    Lie::MapLength,
    Lie::Truncated,
    Lie::WrongKind,
];

#[lambda_parallel]
fn forge(lie: u8) -> Forged {
    Forged(LIES[usize::from(lie)])
}

#[lambda_parallel]
fn receive(_forged: Forged) -> u8 {
    0
}

#[lambda_parallel]
fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn forged_payloads_are_errors_within_bounded_memory() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(square, [3]).unwrap(), [9]);
    for (i, lie) in LIES.iter().enumerate() {
        let i = u8::try_from(i).unwrap();
        let (outcome, peak) = peak_during(|| pool.apply(forge, (i,)));
        let err = outcome.unwrap_err();
        assert!(err.is_codec(), "{lie:?}: {err}");
        assert!(
            peak < BOUND,
            "{lie:?}: the caller's heap grew by {peak} bytes"
        );
        let (outcome, peak) = peak_during(|| forge::spawn(i).unwrap().join());
        assert!(outcome.unwrap_err().is_codec(), "{lie:?}");
        assert!(
            peak < BOUND,
            "{lie:?}: the caller's heap grew by {peak} bytes"
        );
        // The worker decoding forged arguments fails that task alone.
        let outcomes = pool.map_each(receive, [Forged(*lie)]);
        let err = outcomes[0].as_ref().unwrap_err();
        assert!(err.is_codec(), "{lie:?}: {err}");
        assert!(
            err.to_string().contains("could not decode its arguments"),
            "{err}"
        );
        assert_eq!(pool.map(square, [4]).unwrap(), [16], "{lie:?}");
    }
    let err = pool.apply(forge, (3,)).unwrap_err().to_string();
    assert!(
        err.ends_with("invalid type: string \"seven\", expected u64"),
        "{err}"
    );
    let err = pool.apply(forge, (2,)).unwrap_err().to_string();
    assert!(
        err.ends_with("the payload ends in the middle of a value"),
        "{err}"
    );
}
