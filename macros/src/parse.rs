//! Reads the item under `#[lambda_parallel]`, keeping the body as raw tokens.

use proc_macro2::{Group, TokenStream};
use quote::{ToTokens, TokenStreamExt};
use syn::parse::{Parse, ParseStream};
use syn::{Abi, Attribute, Signature, Token, Visibility};

/// A function item whose body is never parsed: a typo there is rustc's to report, once.
pub(crate) struct RawFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// The `{ ... }` block, exactly as written.
    pub(crate) body: Group,
}

impl Parse for RawFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        if !starts_fn_signature(input) {
            return Err(input.error("`#[lambda_parallel]` can only be applied to a `fn` item"));
        }
        let sig = input.parse()?;
        if !input.peek(syn::token::Brace) {
            return Err(input.error("`#[lambda_parallel]` needs a function with a body"));
        }
        let body = input.parse()?;
        Ok(RawFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl ToTokens for RawFn {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        tokens.append_all(&self.attrs);
        self.vis.to_tokens(tokens);
        self.sig.to_tokens(tokens);
        self.body.to_tokens(tokens);
    }
}

/// Whether the next tokens are `const? async? unsafe? (extern "abi")? fn`.
fn starts_fn_signature(input: ParseStream<'_>) -> bool {
    let ahead = input.fork();
    let qualifiers = ahead.parse::<Option<Token![const]>>().is_ok()
        && ahead.parse::<Option<Token![async]>>().is_ok()
        && ahead.parse::<Option<Token![unsafe]>>().is_ok()
        && ahead.parse::<Option<Abi>>().is_ok();
    qualifiers && ahead.peek(Token![fn])
}

#[cfg(test)]
mod tests {
    use super::RawFn;
    use quote::{quote, ToTokens};

    #[test]
    fn function_is_given_back_token_for_token() {
        let item = quote! {
            /// Docs.
            #[cfg(test)]
            pub(crate) fn f((a, b): (u8, u8)) -> u8 { a + b; not even valid rust ;; }
        };
        let func = syn::parse2::<RawFn>(item.clone()).map(|func| func.to_token_stream());
        assert_eq!(func.ok().map(|t| t.to_string()), Some(item.to_string()));
    }

    #[test]
    fn non_function_is_rejected_at_its_keyword() {
        let err = syn::parse2::<RawFn>(quote!(
            pub struct S;
        ))
        .err();
        let msg = err.map(|err| err.to_string());
        let expected = "`#[lambda_parallel]` can only be applied to a `fn` item";
        assert_eq!(msg.as_deref(), Some(expected));
    }
}
