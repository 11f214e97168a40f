//! Every rule a `#[lambda_parallel]` function must follow, checked in one pass.

use proc_macro2::{Ident, Span};
use quote::format_ident;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, Lifetime, Pat, ReturnType, Signature, Type, TypeImplTrait};
use syn::{TypeReference, Variadic};

use crate::parse::RawFn;

/// serde implements `Serialize` and `Deserialize` for tuples of up to 16 elements
/// (`TOO_MANY_ARGS` spells the number out).
const MAX_ARGS: usize = 16;

/// A function that passed every rule.
pub(crate) struct Worker<'a> {
    pub(crate) func: &'a RawFn,
    pub(crate) args: Vec<WorkerArg<'a>>,
    /// `None` for a function without `->`.
    pub(crate) output: Option<&'a Type>,
}

/// One argument of a [`Worker`].
pub(crate) struct WorkerArg<'a> {
    pub(crate) ty: &'a Type,
    /// A fresh mixed-site binding for the generated stubs, never the user's pattern.
    pub(crate) binding: Ident,
}

impl<'a> Worker<'a> {
    /// Checks `func` against every rule, reporting all problems at once.
    pub(crate) fn new(func: &'a RawFn) -> syn::Result<Self> {
        let mut errors = Vec::new();
        signature(&func.sig, &mut errors);
        let mut args = Vec::new();
        for (index, input) in func.sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(receiver) => {
                    errors.push(syn::Error::new_spanned(receiver.self_token, SELF_RECEIVER));
                }
                FnArg::Typed(arg) if index == MAX_ARGS => {
                    errors.push(syn::Error::new_spanned(arg, TOO_MANY_ARGS));
                }
                FnArg::Typed(arg) => {
                    TypeRules(&mut errors).visit_type(&arg.ty);
                    let binding = binding(&arg.pat, index, all_plain(&func.sig));
                    args.push(WorkerArg {
                        ty: &arg.ty,
                        binding,
                    });
                }
            }
        }
        let output = match &func.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => {
                if let Type::Never(never) = &**ty {
                    errors.push(syn::Error::new_spanned(never, NEVER_RETURN));
                }
                TypeRules(&mut errors).visit_type(ty);
                Some(&**ty)
            }
        };
        into_result(errors).map(|()| Worker { func, args, output })
    }
}

const CONST_FN: &str = "`#[lambda_parallel]` does not support `const fn`, \
                        a worker only runs at run time";
const ASYNC_FN: &str = "`#[lambda_parallel]` does not support `async fn`, \
                        a worker runs a blocking `fn` in its own process";
const UNSAFE_FN: &str = "`#[lambda_parallel]` cannot run an `unsafe fn` in a worker: \
                         the caller could not uphold its safety contract across processes";
const EXTERN_FN: &str = "`#[lambda_parallel]` does not support `extern` functions, \
                         a worker is called through the Rust ABI";
const GENERIC: &str = "`#[lambda_parallel]` functions cannot be generic, \
                       a worker needs concrete argument and return types";
const LIFETIME_PARAM: &str = "`#[lambda_parallel]` functions cannot have lifetime parameters, \
                              arguments and the return value must be owned";
const WHERE_CLAUSE: &str = "`#[lambda_parallel]` functions cannot have a `where` clause, \
                            a worker needs concrete argument and return types";
const VARIADIC: &str = "`#[lambda_parallel]` does not support variadic arguments";
const SELF_RECEIVER: &str = "`#[lambda_parallel]` cannot be used on methods, \
                             a worker must be a free function without `self`";
const TOO_MANY_ARGS: &str = "`#[lambda_parallel]` functions take at most 16 arguments, \
                             group the rest in a struct";
const NEVER_RETURN: &str = "`#[lambda_parallel]` functions cannot return `!`, \
                            a worker must send back a value";
const REFERENCE: &str = "`#[lambda_parallel]` functions cannot take or return references, \
                         use an owned type such as `String` or `Vec<T>`";
const LIFETIME: &str = "`#[lambda_parallel]` functions cannot take or return borrowed data, \
                        use an owned type or `'static`";
const IMPL_TRAIT: &str = "`#[lambda_parallel]` functions cannot use `impl Trait` in their \
                          signature, name a concrete type";

/// The rules on everything in the signature but its arguments.
fn signature(sig: &Signature, errors: &mut Vec<syn::Error>) {
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(token, CONST_FN));
    }
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(token, ASYNC_FN));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(token, UNSAFE_FN));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(abi, EXTERN_FN));
    }
    let generics = &sig.generics;
    let lifetimes_only = generics
        .params
        .iter()
        .all(|param| matches!(param, GenericParam::Lifetime(_)));
    if !lifetimes_only {
        errors.push(syn::Error::new_spanned(generics, GENERIC));
    } else if !generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(generics, LIFETIME_PARAM));
    } else if let Some(clause) = &generics.where_clause {
        errors.push(syn::Error::new_spanned(clause, WHERE_CLAUSE));
    }
    if let Some(Variadic { dots, .. }) = &sig.variadic {
        errors.push(syn::Error::new_spanned(dots, VARIADIC));
    }
}

/// Rejects types that cannot cross a process boundary for a reason the `Wire` check would hide.
struct TypeRules<'e>(&'e mut Vec<syn::Error>);

impl Visit<'_> for TypeRules<'_> {
    fn visit_type_reference(&mut self, reference: &TypeReference) {
        self.0
            .push(syn::Error::new_spanned(reference.and_token, REFERENCE));
    }

    fn visit_lifetime(&mut self, lifetime: &Lifetime) {
        if lifetime.ident != "static" {
            self.0.push(syn::Error::new_spanned(lifetime, LIFETIME));
        }
    }

    fn visit_type_impl_trait(&mut self, impl_trait: &TypeImplTrait) {
        self.0.push(syn::Error::new_spanned(impl_trait, IMPL_TRAIT));
    }
}

/// Whether every argument is a plain name, which the stubs can then reuse for readable docs.
fn all_plain(sig: &Signature) -> bool {
    sig.inputs.iter().all(|input| match input {
        FnArg::Typed(arg) => {
            matches!(&*arg.pat, Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none())
        }
        FnArg::Receiver(_) => true,
    })
}

fn binding(pat: &Pat, index: usize, all_plain: bool) -> Ident {
    match pat {
        Pat::Ident(pat) if all_plain => {
            let mut ident = pat.ident.clone();
            ident.set_span(Span::mixed_site());
            ident
        }
        _ => format_ident!("arg{}", index, span = Span::mixed_site()),
    }
}

/// Whether `codec = #name` names a codec this build can generate code for.
///
/// A proc-macro cannot see the runtime's features, so this crate has a `bincode` feature of its
/// own, which the runtime's `bincode` feature turns on (`lambda-parallel-macros/bincode`): the
/// two are on together, in one build, for every crate in it. Cargo unifies features, so once
/// any crate in the build enables `lambda-parallel/bincode`, every crate may write `codec =
/// bincode`; a crate that relies on that should enable the feature itself.
pub(crate) fn codec(name: &Ident, errors: &mut Vec<syn::Error>) {
    if name == "bincode" && !cfg!(feature = "bincode") {
        errors.push(syn::Error::new_spanned(name, BINCODE_OFF));
    } else if name != "msgpack" && name != "bincode" {
        let msg = format!("unknown codec `{name}`, expected `msgpack` or `bincode`");
        errors.push(syn::Error::new_spanned(name, msg));
    }
}

const BINCODE_OFF: &str = "`codec = bincode` needs the cargo feature `bincode` of \
                           `lambda-parallel`: `lambda-parallel = { version = \"0.1\", \
                           features = [\"bincode\"] }`";

/// Every problem at once; rustc prints each under its own span.
pub(crate) fn into_result(errors: Vec<syn::Error>) -> syn::Result<()> {
    let mut errors = errors.into_iter();
    let Some(mut all) = errors.next() else {
        return Ok(());
    };
    all.extend(errors);
    Err(all)
}

#[cfg(test)]
mod tests {
    use super::Worker;
    use crate::parse::RawFn;
    use quote::quote;

    fn errors(item: proc_macro2::TokenStream) -> Vec<String> {
        let Ok(func) = syn::parse2::<RawFn>(item) else {
            return vec![String::from("not a function")];
        };
        match Worker::new(&func) {
            Ok(_) => Vec::new(),
            Err(err) => err.into_iter().map(|err| err.to_string()).collect(),
        }
    }

    #[test]
    fn owned_types_static_lifetimes_and_patterns_pass() {
        let item = quote!(
            fn f((a, b): (u8, u8), _: Cow<'static, str>, mut c: Vec<u8>) {}
        );
        assert_eq!(errors(item), Vec::<String>::new());
    }

    #[test]
    fn every_problem_is_reported_in_one_pass() {
        let item = quote!(
            async unsafe fn f<T>(&self, x: &T, y: impl Sized) -> Cow<'_, str> {}
        );
        let errors = errors(item);
        assert_eq!(errors.len(), 7, "{errors:#?}");
        assert!(errors
            .iter()
            .all(|msg| msg.starts_with("`#[lambda_parallel]` ")));
    }

    #[test]
    fn only_the_seventeenth_argument_is_reported() {
        let args = (0..18).map(|i| quote::format_ident!("a{i}"));
        let errors = errors(quote!(fn f(#(#args: u8),*) {}));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("at most 16 arguments"));
    }

    #[test]
    fn plain_names_are_reused_and_patterns_get_fresh_ones() {
        let bindings = |item| {
            let func = syn::parse2::<RawFn>(item).ok()?;
            let worker = Worker::new(&func).ok()?;
            let names = worker.args.iter().map(|arg| arg.binding.to_string());
            Some(names.collect::<Vec<_>>())
        };
        let plain = bindings(quote!(
            fn f(r#type: u8, mut b: u8) {}
        ));
        assert_eq!(plain, Some(vec![String::from("r#type"), String::from("b")]));
        let mixed = bindings(quote!(
            fn f(a: u8, (b, c): (u8, u8)) {}
        ));
        assert_eq!(
            mixed,
            Some(vec![String::from("arg0"), String::from("arg1")])
        );
    }
}
