//! What a function must be for a worker to run it, whichever way it is started (`my_fn::spawn`,
//! a [`Pool`](crate::Pool), the fork server's one-off workers): a [`TaskFn`], whose arguments and
//! result are [`Wire`].

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that can cross the pipe between the caller and a worker process.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; there is nothing to
/// implement by hand. `#[lambda_parallel]` checks it for each argument and the return value.
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
/// out of nothing, which is sound only for function items and closures.
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
pub trait TaskFn<Args, R>: Copy + Send + Sync + 'static + sealed::Sealed<Args, R> {
    /// Calls the function.
    fn call(self, args: Args) -> R;
}

mod sealed {
    /// Implemented exactly where [`TaskFn`](super::TaskFn) is, so that nothing else can be.
    #[allow(
        unreachable_pub,
        reason = "the sealed-trait pattern: public, so that it can bound a public trait, in a \
                  module nobody outside can name"
    )]
    pub trait Sealed<Args, R> {}
}

macro_rules! impl_task_fn {
    ($($arg:ident)*) => {
        impl<F, R, $($arg,)*> sealed::Sealed<($($arg,)*), R> for F
        where
            F: Fn($($arg),*) -> R + Copy + Send + Sync + 'static,
        {
        }

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
