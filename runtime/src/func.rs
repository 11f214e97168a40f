//! What a function must be for a worker to run it, whichever way it is started (`my_fn::spawn`,
//! a [`Pool`](crate::Pool), the fork server's one-off workers): a [`TaskFn`], whose arguments and
//! result are [`Wire`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, CodecChoice};

/// A value that can cross the pipe between the caller and a worker process.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; there is nothing to
/// implement by hand. `#[lambda_parallel]` checks it for each argument and the return value.
///
/// # What crosses
///
/// By default, values cross in `MessagePack` (`rmp-serde`), self-describing, with struct fields
/// by name, in serde's human-readable mode (a type with a readable and a compact form, such as
/// a timestamp, writes the readable one). So the whole serde data model crosses:
/// `serde_json::Value`, `skip_serializing_if` and `default`, `flatten`, untagged, internally and
/// adjacently tagged enums, `u128`/`i128`, maps with non-string keys, `chrono` and `time`
/// types, and the event types of `aws_lambda_events`. Two gaps, both shared with JSON:
///
/// - `Some(None)` reads back as `None` (an `Option<Option<T>>` loses its inner `None`);
/// - a `u128` or `i128` inside an untagged enum or a `#[serde(flatten)]`ed struct does not
///   decode (serde's buffered content has no 128-bit integers); elsewhere they cross.
///
/// A function may choose bincode 2 instead, with `#[lambda_parallel(codec = bincode)]` (cargo
/// feature `bincode`): more compact for plain types, but not self-describing, so it cannot carry
/// what needs `deserialize_any` (`serde_json::Value`, `flatten`, untagged or internally tagged
/// enums) nor skipped fields. See [`TaskFn`] for how a [`Pool`](crate::Pool) uses it.
///
/// Byte vectors (`Vec<u8>`, `Box<[u8]>`) are copied in bulk in either codec. What arrives is
/// untrusted: no length in a payload makes the receiver reserve more than the payload's bytes,
/// and a bad payload is an error of its task ([`Error::is_codec`](crate::Error::is_codec)),
/// whose message names the type, the codec, the function, the task and the side.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to or from a worker process",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "arguments and the return value of a `#[lambda_parallel]` fn must be \
            `serde::Serialize + serde::de::DeserializeOwned + Send + 'static`"
)]
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}

// One error naming `Wire`, rather than one per unmet supertrait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// A function that a worker process can run, taking the tuple `Args` and returning `R`:
/// a [`Pool`](crate::Pool)'s tasks and `my_fn::spawn(..)` alike.
///
/// Implemented for functions of up to 16 arguments (as many as `#[lambda_parallel]` accepts),
/// named by their item (`square`, not a `fn(u64) -> u64` pointer), and for closures that capture
/// nothing: types with no data, so that a worker forked before the call can run them. Arguments
/// and the return value must be [`Wire`]. A `#[lambda_parallel]` function is checked for all of
/// this where it is declared. The trait is sealed: a worker makes its own copy of the function
/// out of nothing, which is sound only for function items and closures, and for the companion
/// struct that `#[lambda_parallel]` generates (below).
///
/// ```
/// # fn main() -> Result<(), lambda_parallel::Error> {
/// let pool = lambda_parallel::Pool::new(2)?;
/// fn add(a: u64, b: u64) -> u64 { a + b }
/// assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, [3, 7]);
/// assert_eq!(pool.map(|x: u64| x * 10, [1, 2])?, [10, 20]);
/// # Ok(())
/// # }
/// ```
///
/// # Codecs
///
/// A function item or a closure always crosses in the default codec (see [`Wire`]): its type
/// has no name, so nothing can say otherwise about it. A `#[lambda_parallel]` function `f` also
/// has `f::TASK`, a value of its companion struct `f`, which is a `TaskFn` of the same
/// arguments and result that runs `f` in the codec the attribute chose. So for a function with
/// `#[lambda_parallel(codec = bincode)]`, pass `f::TASK` to a pool to use bincode:
///
/// ```ignore
/// #[lambda_parallel(codec = bincode)]
/// fn scale(x: u64) -> u64 { x * 3 }
///
/// pool.map(scale::TASK, inputs)?;  // bincode, both ways
/// pool.map(scale, inputs)?;        // `MessagePack`, both ways: correct, just not bincode
/// scale::spawn(7)?.join()?;        // bincode: `spawn` passes `scale::TASK`
/// ```
///
/// Either way, the caller and the worker use the same codec for a task: both read it off the
/// same type. Each frame on the pipe says which codec encoded it, and one in another codec
/// than the task's is a bad frame ([`Error::is_bad_frame`](crate::Error::is_bad_frame)), never
/// a misreading.
///
/// # What is not a task, and when the compiler says so
///
/// A worker cannot be handed a closure's captured values nor follow a function pointer, so
/// neither is a task. What the type system can see, `cargo check` reports, with this trait's
/// message ("pass the captured value as an argument, or use a `#[lambda_parallel]` fn"): a
/// closure that captures a value that is not `Copy` (a `String`, an `Arc`), or not `Send`, or
/// arguments of the wrong types. A closure that borrows a local gets rustc's own "closure may
/// outlive the current function" instead. A `move` closure whose captures are all `Copy`, and
/// a function pointer, differ from a closure that captures nothing only in their size, which
/// no trait bound can ask about on stable Rust: they pass `cargo check`, and `cargo build`
/// fails with one error (E0080), whose note names the call at fault.
///
/// ```compile_fail,E0277
/// # let pool = lambda_parallel::Pool::new(1).unwrap();
/// let suffix = String::from("!");
/// pool.map(move |word: String| word + &suffix, ["a".to_owned()]); // pass `suffix` instead
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot run in a worker process as a task taking `{Args}`",
    label = "not a function that a worker can run by name",
    note = "a worker runs a function by name: a `#[lambda_parallel]` fn, another function item, \
            or a closure that captures nothing, whose arguments are `{Args}`",
    note = "a closure that captures a value cannot run in a worker: pass the captured value as \
            an argument, or use a `#[lambda_parallel]` fn"
)]
pub trait TaskFn<Args, R>: Copy + Send + Sync + 'static + sealed::Sealed<Args, R> {
    /// Calls the function.
    fn call(self, args: Args) -> R;
}

pub(crate) mod sealed {
    use super::CodecChoice;

    /// Implemented exactly where [`TaskFn`](super::TaskFn) is, so that nothing else can be:
    /// here for function items and closures, and by `#[lambda_parallel]` for its companion
    /// structs (through `__private`). It holds what a worker needs beyond `call`.
    #[allow(
        unreachable_pub,
        reason = "the sealed-trait pattern: public, so that it can bound a public trait, in a \
                  module nobody outside can name (but `__private`, for the attribute)"
    )]
    pub trait Sealed<Args, R>: Sized {
        /// The codec of the function's arguments and result, on both sides of the fork.
        const CODEC: CodecChoice = CodecChoice::MSGPACK;

        /// A value of the function's type, made in a worker that was forked before the call
        /// and so never had one.
        fn conjure() -> Self;
    }

    /// How an initializer's return value says it failed: [`InitResult`](super::InitResult).
    #[allow(unreachable_pub, reason = "the sealed-trait pattern, as for `Sealed`")]
    pub trait Init {
        /// Why the initializer failed, if it did.
        fn failure(self) -> Option<String>;
    }
}

/// What a pool's initializer ([`PoolBuilder::initializer`](crate::PoolBuilder::initializer))
/// returns: `()`, or a `Result<(), E>` whose `Err` fails the initializer (its `Debug` form is
/// the error's message), as `main` returns. Sealed; there is nothing to implement.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not what a pool's initializer returns",
    label = "an initializer returns `()` or `Result<(), E>`",
    note = "an initializer returns `()`, or `Result<(), E>` with `E: Debug`, whose `Err` fails the \
            tasks of the worker it ran in"
)]
pub trait InitResult: sealed::Init {}

impl InitResult for () {}

impl<E: std::fmt::Debug> InitResult for Result<(), E> {}

impl sealed::Init for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Debug> sealed::Init for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|err| format!("{err:?}"))
    }
}

/// The codec of `F`'s arguments and result.
pub(crate) fn codec<F: TaskFn<Args, R>, Args, R>() -> Codec {
    <F as sealed::Sealed<Args, R>>::CODEC.0
}

/// `ByName::<F>::OK` fails to compile, where a call instantiates it, unless `F` has no data.
///
/// One associated constant, not an inline `const` block at each place that relies on it, so
/// that a failure is one error. The public methods that take a function name it first, so that
/// the error's note names the user's call rather than a line of this crate.
pub(crate) struct ByName<F>(std::marker::PhantomData<F>);

impl<F> ByName<F> {
    pub(crate) const OK: () = assert!(
        std::mem::size_of::<F>() == 0,
        "a worker runs functions by name: pass a `#[lambda_parallel]` fn, a function item or \
         a closure that captures nothing (pass a captured value as an argument), not a \
         function pointer or a capturing closure"
    );
}

macro_rules! impl_task_fn {
    ($($arg:ident)*) => {
        #[diagnostic::do_not_recommend]
        impl<F, R, $($arg,)*> sealed::Sealed<($($arg,)*), R> for F
        where
            F: Fn($($arg),*) -> R + Copy + Send + Sync + 'static,
        {
            fn conjure() -> F {
                let () = ByName::<F>::OK;
                // SAFETY: `F` has no data (`ByName::<F>::OK`, just above, at compile time), so
                // every value of it is the same value; it implements `Fn` on stable Rust, so it
                // is a function item or a closure (a function pointer or a reference has data),
                // which is inhabited and has no invariant; and it is `Copy`, so making one
                // creates no ownership. The caller had one.
                unsafe { std::mem::zeroed() }
            }
        }

        #[diagnostic::do_not_recommend]
        impl<F, R, $($arg,)*> TaskFn<($($arg,)*), R> for F
        where
            F: Fn($($arg),*) -> R + Copy + Send + Sync + 'static,
        {
            #[allow(non_snake_case)] // the arguments are named after their types
            fn call(self, ($($arg,)*): ($($arg,)*)) -> R {
                self($($arg),*)
            }
        }
    };
}

impl_task_fn!();
impl_task_fn!(A);
impl_task_fn!(A B);
impl_task_fn!(A B C);
impl_task_fn!(A B C D);
impl_task_fn!(A B C D E);
impl_task_fn!(A B C D E G);
impl_task_fn!(A B C D E G H);
impl_task_fn!(A B C D E G H I);
impl_task_fn!(A B C D E G H I J);
impl_task_fn!(A B C D E G H I J K);
impl_task_fn!(A B C D E G H I J K L);
impl_task_fn!(A B C D E G H I J K L M);
impl_task_fn!(A B C D E G H I J K L M N);
impl_task_fn!(A B C D E G H I J K L M N O);
impl_task_fn!(A B C D E G H I J K L M N O P);
impl_task_fn!(A B C D E G H I J K L M N O P Q);

/// The name errors give a task's function (`my_crate::hash_password`).
pub(crate) fn name<F>() -> &'static str {
    std::any::type_name::<F>()
}
