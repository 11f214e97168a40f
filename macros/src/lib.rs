//! Implementation detail of the `lambda-parallel` crate.

mod args;
mod expand;
mod parse;
mod validate;

use proc_macro::TokenStream;

/// Turns a function into a worker that can also run in a forked child process.
///
/// The function stays exactly as written and can still be called directly. Beside it, the
/// attribute adds `name::spawn`, with the same arguments, which runs the function in a worker
/// process and returns a `JoinHandle` whose `join` gives back its result.
///
/// ```ignore
/// use lambda_parallel::lambda_parallel;
///
/// /// Hashes a password.
/// #[lambda_parallel]
/// pub fn hash_password(password: String, rounds: u32) -> Result<String, HashError> {
///     // ...
/// }
///
/// let local = hash_password("x".into(), 10); // a plain call, in this process
/// let handle = hash_password::spawn("x".into(), 10)?; // runs in a forked child
/// let remote: Result<String, HashError> = handle.join()?;
///
/// // On a pool of persistent workers, the function goes by name.
/// let pool = lambda_parallel::Pool::new(4)?;
/// let hashes = pool.starmap_each(hash_password, [("a".into(), 10), ("b".into(), 10)]);
/// ```
///
/// # Accepted forms
///
/// A free function with a body, at module level or inside a block, with any visibility,
/// attributes and doc comments. Arguments may be patterns (`(a, b): (u32, u32)`, `_: u8`,
/// `mut x: T`). Without `->`, the worker returns `()`. A `#[cfg]` on the function also gates the
/// generated items.
///
/// # Arguments
///
/// - `crate = path::to::lambda_parallel` (or `crate = "path::to::lambda_parallel"`): where the
///   generated code finds the runtime, for crates that re-export it. Default: `::lambda_parallel`.
/// - `codec = bincode`: the function's arguments and result cross in bincode 2 rather than in
///   the default, self-describing `MessagePack` (`codec = msgpack`, which may also be written
///   out). bincode is more compact for plain types but cannot carry what needs
///   `deserialize_any` (`serde_json::Value`, `flatten`, untagged enums) nor skipped fields. It
///   needs the cargo feature `bincode` of `lambda-parallel`; without it, `codec = bincode` is a
///   compile error that says so. `name::spawn` uses the function's codec; a pool uses it when
///   given `name::TASK` (`pool.map(name::TASK, inputs)`), while `pool.map(name, inputs)` passes
///   the bare function, whose type cannot carry a codec, and so uses the default codec on both
///   ends (correct, just not bincode).
///
/// # Restrictions
///
/// Each is a compile error under the offending token, and all are reported at once:
///
/// - every argument type and the return type must be `Wire`: `Serialize + DeserializeOwned +
///   Send + 'static`, since values are copied between processes;
/// - no references, no lifetimes other than `'static`, no `impl Trait`, no `-> !`;
/// - no `async`, `const`, `unsafe` or `extern` functions, no generics or `where` clause, no
///   `self` (methods are not supported), no C variadics, at most 16 arguments;
/// - the function's name must be free in the type namespace of its scope (no type or module
///   of the same name), since the companion struct takes it.
///
/// # What it expands to
///
/// ```ignore
/// #[allow(clippy::needless_pass_by_value)] // arguments must be owned: they cross processes
/// pub fn hash_password(password: String, rounds: u32) -> Result<String, HashError> { ... }
///
/// #[doc = "..."]
/// #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
/// #[allow(non_camel_case_types)]
/// pub struct hash_password {}
///
/// impl hash_password {
///     #[doc = "..."]
///     pub const TASK: Self = Self {};
///
///     #[doc = "..."]
///     pub fn spawn(password: String, rounds: u32)
///         -> __private::Result<__private::JoinHandle<Result<String, HashError>>, __private::Error>
///     {
///         __private::spawn::<
///             Self,
///             <(String, u32,) as __private::Checked<{ OK }>>::Type,
///             <Result<String, HashError> as __private::Checked<{ OK }>>::Type,
///         >(Self::TASK, (password, rounds,))
///     }
/// }
///
/// impl __private::SealedTaskFn<(String, u32,), Result<String, HashError>> for hash_password {
///     // Only with `codec = ...`; the default is MessagePack.
///     const CODEC: __private::CodecChoice = __private::CodecChoice::BINCODE;
///     fn conjure() -> Self { Self {} }
/// }
///
/// impl __private::TaskFn<(String, u32,), Result<String, HashError>> for hash_password {
///     fn call(self, (password, rounds,): (String, u32,)) -> Result<String, HashError> {
///         hash_password(password, rounds)
///     }
/// }
/// ```
///
/// where each `{ OK }` is `{ __private::assert_wire::<String>() & __private::assert_wire::<u32>()
/// & __private::assert_wire::<Result<String, HashError>>() & true }`, each check spanned at the
/// user's type. `<T as Checked<{ OK }>>::Type` is just `T`; if a check fails, rustc reports it
/// once, under that type, and the error type it leaves behind silences every follow-up error.
///
/// Here `__private` is `::lambda_parallel::__private` (or the `crate = ...` path). The struct is
/// zero-sized and braced, so it lives only in the type namespace and does not clash with the
/// function: `hash_password` in `call` is the function. The struct is itself a `TaskFn`, which
/// carries the function's codec (a function item's type cannot: it has no name to implement a
/// trait for), and a worker makes its own with `conjure`. Its items copy the function's
/// `#[cfg]`s, and the bindings in `spawn` and `call` are hygienic, never the function's own
/// patterns.
#[proc_macro_attribute]
pub fn lambda_parallel(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::lambda_parallel(args.into(), item.into()).into()
}
