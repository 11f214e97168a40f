//! A function's codec: `codec = bincode` crosses in bincode both ways, through `spawn` and
//! through a pool given `f::TASK`; the bare function crosses in the default codec; and a value
//! that fails names its type, its codec, its function, its task and its side.
//!
//! bincode is told apart by what it cannot carry: a `serde_json::Value` needs
//! `deserialize_any`, which the default codec has and bincode has not.

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use lambda_parallel::{lambda_parallel, Pool};

/// Through the default codec, named.
#[lambda_parallel(codec = msgpack)]
fn json_default(n: u64) -> serde_json::Value {
    serde_json::json!({ "n": n })
}

/// A path that is not UTF-8 cannot be encoded, in either codec.
#[lambda_parallel]
fn bad_path(byte: u8) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(vec![b'a', byte]))
}

#[test]
fn msgpack_named_is_the_default_through_every_entry_point() {
    let want = |n: u64| serde_json::json!({ "n": n });
    assert_eq!(json_default::spawn(3).unwrap().join().unwrap(), want(3));
    for pool in [Pool::new(2).unwrap(), Pool::new(0).unwrap()] {
        assert_eq!(
            pool.map(json_default::TASK, [1, 2]).unwrap(),
            [want(1), want(2)]
        );
        assert_eq!(pool.map(json_default, [1, 2]).unwrap(), [want(1), want(2)]);
        assert_eq!(pool.apply(json_default::TASK, (5,)).unwrap(), want(5));
    }
}

#[test]
fn a_value_that_cannot_be_encoded_names_its_type_codec_task_and_side() {
    let pool = Pool::new(1).unwrap();
    let outcomes = pool.map_each(bad_path::TASK, [b'b', 0xff]);
    assert_eq!(outcomes[0].as_ref().unwrap(), &PathBuf::from("ab"));
    let err = outcomes[1].as_ref().unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert_eq!(
        err.to_string(),
        "task 1 of worker `codec_choice::bad_path` could not encode its result: \
         `std::path::PathBuf` in msgpack: path contains invalid UTF-8 characters"
    );
}

#[cfg(feature = "bincode")]
mod bincode {
    use lambda_parallel::{lambda_parallel, Pool};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Reading {
        pub(crate) sensor: String,
        pub(crate) values: Vec<u8>,
        pub(crate) scale: Option<i64>,
    }

    /// Plain types, which bincode carries.
    #[lambda_parallel(codec = bincode)]
    fn rescale(reading: Reading, by: i64) -> Reading {
        Reading {
            scale: reading.scale.map(|scale| scale * by),
            ..reading
        }
    }

    /// A result bincode cannot decode.
    #[lambda_parallel(codec = bincode)]
    fn json(n: u64) -> serde_json::Value {
        serde_json::json!({ "n": n })
    }

    /// An argument bincode cannot decode.
    #[lambda_parallel(codec = bincode)]
    fn takes_json(value: serde_json::Value) -> bool {
        value.is_object()
    }

    fn reading(i: u8) -> Reading {
        Reading {
            sensor: format!("s{i}"),
            values: vec![i; usize::from(i) * 100],
            scale: i.is_multiple_of(2).then_some(i64::from(i)),
        }
    }

    fn rescaled(i: u8) -> Reading {
        rescale(reading(i), 3)
    }

    #[test]
    fn bincode_function_round_trips_through_spawn() {
        let got = rescale::spawn(reading(4), 3).unwrap().join().unwrap();
        assert_eq!(got, rescaled(4));
    }

    #[test]
    fn bincode_function_round_trips_through_a_pool_given_its_task() {
        // The inline pool encodes and decodes too.
        for pool in [Pool::new(2).unwrap(), Pool::new(0).unwrap()] {
            let inputs: Vec<_> = (0..20).map(|i| (reading(i), 3)).collect();
            let want: Vec<_> = (0..20).map(rescaled).collect();
            assert_eq!(pool.starmap(rescale::TASK, inputs.clone()).unwrap(), want);
            let each = pool.starmap_each(rescale::TASK, inputs.clone());
            let each: Vec<_> = each.into_iter().map(Result::unwrap).collect();
            assert_eq!(each, want);
            assert_eq!(
                pool.apply(rescale::TASK, (reading(7), 3)).unwrap(),
                rescaled(7)
            );
            let async_result = pool.apply_async(rescale::TASK, (reading(8), 3)).unwrap();
            assert_eq!(async_result.get().unwrap(), rescaled(8));
            // The bare function: the default codec, both ways.
            assert_eq!(pool.starmap(rescale, inputs).unwrap(), want);
        }
    }

    #[test]
    fn bincode_function_crosses_in_bincode_and_its_bare_fn_in_the_default() {
        let want = |n: u64| serde_json::json!({ "n": n });
        for pool in [Pool::new(2).unwrap(), Pool::new(0).unwrap()] {
            assert_eq!(pool.map(json, [1, 2]).unwrap(), [want(1), want(2)]);
            let outcomes = pool.map_each(json::TASK, [1, 2]);
            let err = outcomes[1].as_ref().unwrap_err();
            assert!(err.is_codec(), "{err}");
            let msg = err.to_string();
            let prefix = "failed to decode the result of task 1 of worker \
                          `codec_choice::bincode::json`: `serde_json::value::Value` in bincode: \
                          bincode cannot carry a type that needs `deserialize_any`";
            assert!(msg.starts_with(prefix), "{msg}");
            let mapped: Vec<_> = pool.imap(json::TASK, [3]).collect();
            assert!(mapped[0]
                .as_ref()
                .is_err_and(lambda_parallel::Error::is_codec));
        }
        let err = json::spawn(1).unwrap().join().unwrap_err();
        assert!(err.is_codec(), "{err}");
        assert!(
            err.to_string()
                .contains("`serde_json::value::Value` in bincode"),
            "{err}"
        );
    }

    #[test]
    fn bincode_arguments_that_cannot_be_decoded_name_their_type_and_side() {
        let pool = Pool::new(1).unwrap();
        let value = serde_json::json!({ "a": 1 });
        let err = pool.apply(takes_json::TASK, (value.clone(),)).unwrap_err();
        assert!(err.is_codec(), "{err}");
        let msg = err.to_string();
        let prefix = "task 0 of worker `codec_choice::bincode::takes_json` could not decode its \
                      arguments: `(serde_json::value::Value,)` in bincode: ";
        assert!(msg.starts_with(prefix), "{msg}");
        assert!(pool.apply(takes_json, (value,)).unwrap());
    }
}
