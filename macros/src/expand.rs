//! Generates the companion struct and its impls; nothing here can fail.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Meta, Token};

use crate::args::{Args, Codec};
use crate::parse::RawFn;
use crate::validate::Worker;

pub(crate) fn lambda_parallel(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: RawFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        // Not a function: give the tokens back untouched, plus our error.
        Err(err) => return with_error(item, err),
    };
    // Both are checked, so that argument and signature mistakes show up in the same compile.
    match (Args::from_tokens(args), Worker::new(&func)) {
        (Ok(args), Ok(worker)) => expand(&worker, &args),
        (Err(err), Ok(_)) | (Ok(_), Err(err)) => with_error(func.to_token_stream(), err),
        (Err(mut err), Err(more)) => {
            err.combine(more);
            with_error(func.to_token_stream(), err)
        }
    }
}

fn with_error(mut tokens: TokenStream, err: syn::Error) -> TokenStream {
    tokens.extend(err.into_compile_error());
    tokens
}

/// The user's function, then its companion items, each gated by the function's `#[cfg]`s.
fn expand(worker: &Worker<'_>, args: &Args) -> TokenStream {
    // Input:  #[cfg(unix)] pub fn hash(password: String) -> u64 { ... }
    // Output: #[allow(clippy::needless_pass_by_value)]
    //         #[cfg(unix)] pub fn hash(password: String) -> u64 { ... }
    //         #[cfg(unix)] pub struct hash {}
    //         #[cfg(unix)] impl hash { pub const TASK: Self = ...; pub fn spawn(...) -> ... }
    //         #[cfg(unix)] impl SealedTaskFn<(String,), u64> for hash { ... }
    //         #[cfg(unix)] impl TaskFn<(String,), u64> for hash { ... }
    let func = worker.func;
    let cfgs = cfgs(&func.attrs);
    let cfgs = quote!(#(#cfgs)*);
    let rt = args.private();
    let items = vec![
        companion(worker),
        spawn_impl(worker, &rt),
        task_fn_impls(worker, args.codec(), &rt),
    ];
    quote! {
        // A worker must take its arguments by value, since they cross a process boundary; that
        // is this attribute's contract, not a choice clippy can improve on.
        #[allow(clippy::needless_pass_by_value)]
        #func
        #(#cfgs #items)*
    }
}

fn companion(worker: &Worker<'_>) -> TokenStream {
    // Input:  pub fn hash(password: String) -> u64 { ... }
    // Output: #[doc = "..."] #[derive(Clone, Copy, Debug)] pub struct hash {}
    let (vis, name) = (&worker.func.vis, &worker.func.sig.ident);
    let doc = format!(
        "Spawns {} in a worker process: see [`{name}::spawn`].",
        link(worker)
    );
    quote! {
        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug)]
        // Named after the function, so that `#name::spawn` reads as a path to the function.
        #[allow(non_camel_case_types)]
        #vis struct #name {}
    }
}

fn spawn_impl(worker: &Worker<'_>, rt: &TokenStream) -> TokenStream {
    // Input:  pub fn hash(password: String) -> u64 { ... }
    // Output: impl hash {
    //             #[doc = "..."]
    //             pub const TASK: Self = Self {};
    //             #[doc = "..."]
    //             pub fn spawn(password: String) -> Result<JoinHandle<u64>, Error> {
    //                 __private::spawn::<
    //                     Self,
    //                     <(String,) as Checked<{ assert_wire::<String>() & ... }>>::Type,
    //                     <u64 as Checked<{ assert_wire::<String>() & ... }>>::Type,
    //                 >(Self::TASK, (password,))
    //             }
    //         }
    // `Self::TASK` is the companion, a `TaskFn` with the function's codec (`task_fn_impls`).
    // Each `assert_wire` is spanned at the user's type, so that is what a failure underlines. A
    // failure also makes the two type arguments error types, which silences every later error
    // about them (the `TaskFn` and `Wire` bounds of `spawn`, its return type); the identical
    // reports are merged.
    let (vis, name) = (&worker.func.vis, &worker.func.sig.ident);
    let doc = format!(
        "Runs {} in a forked worker process.\n\n\
         The arguments are sent to the worker over a pipe, in the function's codec; \
         `JoinHandle::join` waits for it and returns the function's result.\n\n\
         # Errors\n\n\
         Returns an error when the worker process cannot be started.",
        link(worker)
    );
    let task_doc = format!(
        "{} as a value, for a pool: `pool.map({}::TASK, inputs)` runs it in the codec that \
         its `#[lambda_parallel]` attribute chose, where `pool.map({0}, inputs)` uses the \
         default codec.",
        link(worker),
        name.unraw()
    );
    let bindings = worker.args.iter().map(|arg| &arg.binding);
    let params = worker.args.iter().map(|arg| {
        let (binding, ty) = (&arg.binding, arg.ty);
        quote!(#binding: #ty)
    });
    let output = output(worker);
    let tys = worker.args.iter().map(|arg| arg.ty);
    let checks = worker.args.iter().map(|arg| arg.ty.to_token_stream());
    let checks = checks
        .chain([output.clone()])
        .map(|ty| quote_spanned!(ty.span()=> #rt::assert_wire::<#ty>() &));
    let ok = quote!({ #(#checks)* true });
    quote! {
        impl #name {
            #[doc = #task_doc]
            #vis const TASK: Self = Self {};

            #[doc = #doc]
            #vis fn spawn(#(#params),*)
                -> #rt::Result<#rt::JoinHandle<#output>, #rt::Error>
            {
                #rt::spawn::<
                    Self,
                    <(#(#tys,)*) as #rt::Checked<#ok>>::Type,
                    <#output as #rt::Checked<#ok>>::Type,
                >(Self::TASK, (#(#bindings,)*))
            }
        }
    }
}

fn task_fn_impls(worker: &Worker<'_>, codec: Option<Codec>, rt: &TokenStream) -> TokenStream {
    // Input:  #[lambda_parallel(codec = bincode)] pub fn hash(password: String) -> u64 { ... }
    // Output: impl __private::SealedTaskFn<(String,), u64> for hash {
    //             const CODEC: __private::CodecChoice = __private::CodecChoice::BINCODE;
    //             fn conjure() -> Self { Self {} }
    //         }
    //         impl __private::TaskFn<(String,), u64> for hash {
    //             fn call(self, (password,): (String,)) -> u64 { hash(password) }
    //         }
    // `hash` in `call` is the function (the struct is braced, so it is not in the value
    // namespace). The runtime's blanket impl for `Fn` types does not overlap: `Fn` is a
    // fundamental trait, and the struct, local to this crate, does not implement it.
    let name = &worker.func.sig.ident;
    let bindings: Vec<_> = worker.args.iter().map(|arg| &arg.binding).collect();
    let tys: Vec<_> = worker.args.iter().map(|arg| arg.ty).collect();
    let output = output(worker);
    let ret = worker.output.map(|ty| quote!(-> #ty));
    let codec = codec.map(|codec| {
        let choice = match codec {
            Codec::MessagePack => quote!(MSGPACK),
            Codec::Bincode => quote!(BINCODE),
        };
        quote!(const CODEC: #rt::CodecChoice = #rt::CodecChoice::#choice;)
    });
    quote! {
        impl #rt::SealedTaskFn<(#(#tys,)*), #output> for #name {
            #codec
            fn conjure() -> Self {
                Self {}
            }
        }

        impl #rt::TaskFn<(#(#tys,)*), #output> for #name {
            fn call(self, (#(#bindings,)*): (#(#tys,)*)) #ret {
                #name(#(#bindings),*)
            }
        }
    }
}

/// An intra-doc link to the function; `fn@` because the struct shares its name.
fn link(worker: &Worker<'_>) -> String {
    let name = &worker.func.sig.ident;
    format!("[`{}`](fn@{name})", name.unraw())
}

fn output(worker: &Worker<'_>) -> TokenStream {
    worker
        .output
        .map_or_else(|| quote!(()), ToTokens::to_token_stream)
}

/// The function's `#[cfg]`s, and the `cfg`s inside its `#[cfg_attr]`s, for the companion items.
/// Other attributes in a `cfg_attr` (`inline`, ...) may not apply to a struct, so they are dropped.
fn cfgs(attrs: &[Attribute]) -> Vec<TokenStream> {
    let mut cfgs = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("cfg") {
            cfgs.push(attr.to_token_stream());
        } else if attr.path().is_ident("cfg_attr") {
            let parser = Punctuated::<Meta, Token![,]>::parse_terminated;
            // An ill-formed `cfg_attr` is rustc's to report, on the function.
            let Ok(list) = attr.parse_args_with(parser) else {
                continue;
            };
            let mut list = list.into_iter();
            let predicate = list.next();
            let inner: Vec<Meta> = list.filter(|meta| meta.path().is_ident("cfg")).collect();
            if let (Some(predicate), false) = (predicate, inner.is_empty()) {
                cfgs.push(quote!(#[cfg_attr(#predicate, #(#inner),*)]));
            }
        }
    }
    cfgs
}
