//! The arguments of `#[lambda_parallel(...)]`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Ident, LitStr, Path};

/// Every key the attribute accepts, for the "unknown argument" message.
const KEYS: &[&str] = &["crate", "codec"];

/// The parsed `#[lambda_parallel(...)]` arguments.
pub(crate) struct Args {
    /// `crate = path::to::lambda_parallel`, for crates that re-export the runtime.
    krate: Option<Path>,
    /// `codec = msgpack` or `codec = bincode`, as written; the default codec if absent.
    codec: Option<Ident>,
}

/// A codec that `codec = ...` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    MessagePack,
    Bincode,
}

impl Args {
    /// Reads the attribute's arguments, reporting every unknown or repeated key.
    pub(crate) fn from_tokens(tokens: TokenStream) -> syn::Result<Self> {
        let mut args = Args {
            krate: None,
            codec: None,
        };
        let mut errors = Vec::new();
        syn::meta::parser(|meta| {
            if meta.path.is_ident("crate") {
                let path = crate_path(&meta)?;
                set(&mut args.krate, path, &meta, &mut errors);
            } else if meta.path.is_ident("codec") {
                let name: Ident = meta.value()?.parse()?;
                crate::validate::codec(&name, &mut errors);
                set(&mut args.codec, name, &meta, &mut errors);
            } else {
                errors.push(unknown(&meta.path));
                skip_value(&meta)?;
            }
            Ok(())
        })
        .parse2(tokens)?;
        crate::validate::into_result(errors).map(|()| args)
    }

    /// The path generated code uses to reach the runtime's `__private` module.
    pub(crate) fn private(&self) -> TokenStream {
        let krate = self
            .krate
            .as_ref()
            .map_or_else(|| quote!(::lambda_parallel), ToTokens::to_token_stream);
        quote!(#krate::__private)
    }

    /// The codec the function chose, if any (once `validate::codec` has accepted its name).
    pub(crate) fn codec(&self) -> Option<Codec> {
        match self.codec.as_ref()?.to_string().as_str() {
            "msgpack" => Some(Codec::MessagePack),
            "bincode" => Some(Codec::Bincode),
            _ => None,
        }
    }
}

/// Stores a key's value; the one place that detects a repeated key.
fn set<T>(
    slot: &mut Option<T>,
    value: T,
    meta: &ParseNestedMeta<'_>,
    errors: &mut Vec<syn::Error>,
) {
    if slot.is_some() {
        let key = path_to_string(&meta.path);
        let msg = format!("duplicate `#[lambda_parallel]` argument `{key}`");
        errors.push(syn::Error::new_spanned(&meta.path, msg));
    } else {
        *slot = Some(value);
    }
}

/// `crate = path` or `crate = "path"`.
fn crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let input = meta.value()?;
    if input.peek(LitStr) {
        input.parse::<LitStr>()?.parse()
    } else {
        input.call(Path::parse_mod_style)
    }
}

fn unknown(path: &Path) -> syn::Error {
    let key = path_to_string(path);
    let expected = KEYS
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let msg = format!("unknown `#[lambda_parallel]` argument `{key}`, expected one of: {expected}");
    syn::Error::new_spanned(path, msg)
}

/// Consumes an unknown key's value (`= expr` or `(...)`), so later keys are still checked.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

fn path_to_string(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::{Args, Codec};
    use quote::quote;

    fn error(tokens: proc_macro2::TokenStream) -> String {
        match Args::from_tokens(tokens) {
            Ok(_) => String::from("ok"),
            Err(err) => err
                .into_iter()
                .map(|err| err.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn no_arguments_use_the_absolute_runtime_path() {
        let args = Args::from_tokens(quote!()).map(|args| args.private().to_string());
        assert_eq!(
            args.ok().as_deref(),
            Some(":: lambda_parallel :: __private")
        );
    }

    #[test]
    fn crate_accepts_a_path_or_a_string() {
        for tokens in [quote!(crate = my::lp), quote!(crate = "my::lp")] {
            let args = Args::from_tokens(tokens).map(|args| args.private().to_string());
            assert_eq!(args.ok().as_deref(), Some("my :: lp :: __private"));
        }
    }

    #[test]
    fn unknown_and_duplicate_arguments_are_all_reported() {
        let msg = error(quote!(timout = 5, crate = a, crate = b, retries(3)));
        let expected = "unknown `#[lambda_parallel]` argument `timout`, expected one of: \
                        `crate`, `codec`\n\
                        duplicate `#[lambda_parallel]` argument `crate`\n\
                        unknown `#[lambda_parallel]` argument `retries`, expected one of: \
                        `crate`, `codec`";
        assert_eq!(msg, expected);
    }

    #[test]
    fn codec_names_one_of_the_codecs_once() {
        let codec = |tokens| Args::from_tokens(tokens).ok().map(|args| args.codec());
        assert_eq!(codec(quote!()), Some(None));
        assert_eq!(
            codec(quote!(codec = msgpack)),
            Some(Some(Codec::MessagePack))
        );
        let msg = error(quote!(codec = json, codec = msgpack));
        let expected = "unknown codec `json`, expected `msgpack` or `bincode`\n\
                        duplicate `#[lambda_parallel]` argument `codec`";
        assert_eq!(msg, expected);
    }

    #[test]
    fn codec_bincode_needs_the_feature() {
        let codec = Args::from_tokens(quote!(codec = bincode)).map(|args| args.codec());
        if cfg!(feature = "bincode") {
            assert_eq!(codec.ok(), Some(Some(Codec::Bincode)));
        } else {
            let msg = codec.err().map(|err| err.to_string()).unwrap_or_default();
            assert!(msg.contains("cargo feature `bincode`"), "{msg}");
        }
    }
}
