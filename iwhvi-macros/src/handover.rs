//! The hand-over from a model to its guides.
//!
//! A model's expansion defines a hidden `__iwhvi_model_rules_<Model>!`
//! macro and re-exports it under the model's own name in the macro
//! namespace (`pub(crate) use __iwhvi_model_rules_Mean as Mean;`). A guide
//! calls `path::to::Mean! { … }` with the path it was given, so whatever
//! brings the struct `Mean` into scope (its module path, a `use`, a
//! renaming `use … as M`, a `pub use` re-export) brings its hand-over
//! macro too, and a model of the same name in a parent module does not
//! interfere (the re-export lives in the module namespace, not in the
//! textual scope of `macro_rules!`). The macro is `pub(crate)`: a guide
//! lives in its model's crate. The macro hands the guide struct to the
//! `guide!` expansion with the model's latents in front of it as typed
//! tokens, `[name: scalar positive, …]`, then its data fields with their
//! shapes, `data [y: vec real, x: matrix real, n: scalar integer, …]` (the
//! lengths are the instance's, read through the data accessors at `new`),
//! which the guide parses back with an error on any unknown word.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, Token};

use crate::model::ast::{Elem, Shape};
use crate::model::plan::{LatentSupport, Plan};

/// The hidden macro's own name for a model (it is called by the model's
/// name, see the module documentation).
pub fn rules_name(model: &Ident) -> Ident {
    format_ident!("__iwhvi_model_rules_{}", model, span = model.span())
}

/// The model side: the hidden macro and its re-export.
pub fn model_side(plan: &Plan<'_>) -> TokenStream {
    let latents = plan.latents().map(|l| {
        let name = &l.field.ident;
        let shape = if l.shape.is_scalar() {
            quote!(scalar)
        } else {
            quote!(vector)
        };
        let support = Ident::new(l.support.word(), proc_macro2::Span::call_site());
        quote!(#name: #shape #support)
    });
    let data = plan.data.iter().map(|d| {
        let name = &d.field.ident;
        let (shape, elem) = data_words(d.shape);
        let (shape, elem) = (
            Ident::new(shape, proc_macro2::Span::call_site()),
            Ident::new(elem, proc_macro2::Span::call_site()),
        );
        quote!(#name: #shape #elem)
    });
    // The transformed values with their expressions, for the guide's
    // messages (a guide cannot read them: it is told what to write instead).
    let transformed = plan.transformed().filter_map(|t| match &t.field.role {
        crate::model::ast::Role::Transformed(args) => {
            let name = &t.field.ident;
            let value = &args.value;
            let index = args.index.as_ref().map(|i| quote!(for #i));
            Some(quote!(#name #index { #value }))
        }
        _ => None,
    });
    hidden_macro(
        &plan.model.ident,
        quote!([#(#latents),*] data [#(#data),*] transformed [#(#transformed),*]),
    )
}

/// A data field's shape and element words (`other` for a type the guide
/// cannot read as an encoder's input).
fn data_words(shape: Option<&Shape>) -> (&'static str, &'static str) {
    let elem = |e: Elem| match e {
        Elem::Real => "real",
        Elem::Integer => "integer",
        Elem::Bool => "bool",
    };
    match shape {
        Some(Shape::Scalar(e)) => ("scalar", elem(*e)),
        Some(Shape::Array(e, _) | Shape::Vec(e)) => ("vec", elem(*e)),
        Some(Shape::Matrix) => ("matrix", "real"),
        None => ("other", "other"),
    }
}

/// The model side of a model with a mistake: its guides are told so with
/// `[!]` and expand to their plain structs.
pub fn failed_model(model: &Ident) -> TokenStream {
    hidden_macro(model, quote!([!]))
}

fn hidden_macro(model: &Ident, latents: TokenStream) -> TokenStream {
    let guide_macro = rules_name(model);
    quote! {
        /// Hands a guide declared for this model (`#[variational(guide = ...)]`)
        /// the model's latents, so that the guide is checked against them.
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! #guide_macro {
            ($($guide:tt)*) => {
                ::iwhvi::__private::guide! { #latents $($guide)* }
            };
        }

        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #guide_macro as #model;
    }
}

/// One model latent as the model's expansion describes it.
pub struct LatentInfo {
    pub name: Ident,
    pub vector: bool,
    pub support: LatentSupport,
}

impl Parse for LatentInfo {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let shape: Ident = input.parse()?;
        let vector = match shape.to_string().as_str() {
            "scalar" => false,
            "vector" => true,
            other => {
                return Err(syn::Error::new(
                    shape.span(),
                    format!("unknown latent shape `{other}`: expected `scalar` or `vector`"),
                ));
            }
        };
        let word: Ident = input.parse()?;
        let support = LatentSupport::ALL
            .iter()
            .find(|(_, w)| word == w)
            .map(|(s, _)| *s)
            .ok_or_else(|| {
                syn::Error::new(word.span(), format!("unknown latent support `{word}`"))
            })?;
        Ok(Self {
            name,
            vector,
            support,
        })
    }
}

/// The shape of a model's data field as the guide is told it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DataShape {
    Scalar,
    /// A `Vec` or an array: one value per element.
    Vec,
    /// A `DMatrix<f64>`: its rows are the elements.
    Matrix,
    /// A type the guide does not read.
    Other,
}

/// One model data field as the model's expansion describes it.
pub struct DataInfo {
    pub name: Ident,
    pub shape: DataShape,
    /// `real`, `integer`, `bool` or `other`.
    pub elem: Ident,
}

impl Parse for DataInfo {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        let word: Ident = input.parse()?;
        let shape = match word.to_string().as_str() {
            "scalar" => DataShape::Scalar,
            "vec" => DataShape::Vec,
            "matrix" => DataShape::Matrix,
            "other" => DataShape::Other,
            other => {
                return Err(syn::Error::new(
                    word.span(),
                    format!(
                        "unknown data shape `{other}`: expected `scalar`, `vec`, `matrix` or `other`"
                    ),
                ));
            }
        };
        let elem: Ident = input.parse()?;
        if !["real", "integer", "bool", "other"]
            .iter()
            .any(|w| elem == w)
        {
            return Err(syn::Error::new(
                elem.span(),
                format!("unknown data element `{elem}`"),
            ));
        }
        Ok(Self { name, shape, elem })
    }
}

/// One `#[transformed]` value of the model, `name [for i] { value }`: a
/// name the guide cannot read, with what to write instead.
pub struct TransformedInfo {
    pub name: Ident,
    /// The index of an elementwise value (`for j`).
    pub index: Option<Ident>,
    /// Its expression in the model's latents and data.
    pub value: TokenStream,
}

impl Parse for TransformedInfo {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = input.parse()?;
        let index = match input.parse::<Option<Token![for]>>()? {
            Some(_) => Some(input.parse()?),
            None => None,
        };
        let content;
        syn::braced!(content in input);
        Ok(Self {
            name,
            index,
            value: content.parse()?,
        })
    }
}

impl TransformedInfo {
    /// Its expression as a user writes it (`mu + tau * z[j]`, not
    /// `mu + tau * z [j]`).
    pub fn written(&self) -> String {
        let spaced = self.value.to_string();
        let mut out = String::with_capacity(spaced.len());
        let chars: Vec<char> = spaced.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let next = chars.get(i + 1).copied();
            let prev = out.chars().last();
            let drop = c == ' '
                && (matches!(next, Some(',' | ']' | ')' | '.' | '['))
                    || matches!(prev, Some('[' | '(' | '.'))
                    || (next == Some('(')
                        && prev.is_some_and(|p| p.is_alphanumeric() || p == '_')));
            if !drop {
                out.push(c);
            }
        }
        out
    }
}

/// `[name: scalar real, …] data [y: vec real, …] transformed [v { … }, …]
/// Model ; struct Guide { … }`, or `[!] …` when the model failed.
pub struct GuideInput {
    /// `None` when the model failed.
    pub latents: Option<Vec<LatentInfo>>,
    /// The model's data fields (empty when the model failed).
    pub data: Vec<DataInfo>,
    /// The model's `#[transformed]` values (empty when the model failed).
    pub transformed: Vec<TransformedInfo>,
    pub model: syn::Path,
    pub guide: syn::DeriveInput,
}

impl Parse for GuideInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let content;
        syn::bracketed!(content in input);
        let latents = if content.parse::<Option<Token![!]>>()?.is_some() {
            None
        } else {
            let latents = content.parse_terminated(LatentInfo::parse, Token![,])?;
            Some(latents.into_iter().collect())
        };
        let mut data = Vec::new();
        if latents.is_some() {
            let word: Ident = input.parse()?;
            if word != "data" {
                return Err(syn::Error::new(word.span(), "expected `data [...]`"));
            }
            let content;
            syn::bracketed!(content in input);
            data = content
                .parse_terminated(DataInfo::parse, Token![,])?
                .into_iter()
                .collect();
        }
        let mut transformed = Vec::new();
        if latents.is_some() && input.peek(Ident) && input.peek2(syn::token::Bracket) {
            let word: Ident = input.parse()?;
            if word != "transformed" {
                return Err(syn::Error::new(word.span(), "expected `transformed [...]`"));
            }
            let content;
            syn::bracketed!(content in input);
            transformed = content
                .parse_terminated(TransformedInfo::parse, Token![,])?
                .into_iter()
                .collect();
        }
        let model = input.parse()?;
        input.parse::<Token![;]>()?;
        Ok(Self {
            latents,
            data,
            transformed,
            model,
            guide: input.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_over_reads_back_typed_latents() {
        let input: GuideInput = syn::parse_quote! {
            [mu: scalar real, tau: scalar positive, theta: vector real]
            data [y: vec real, x: matrix real, n: scalar integer] Schools ; struct G {}
        };
        assert_eq!(input.data.len(), 3);
        assert_eq!(input.data[1].shape, DataShape::Matrix);
        assert!(input.data[2].elem == "integer");
        let latents = input.latents.expect("a model without mistakes");
        assert_eq!(latents.len(), 3);
        assert!(latents[2].vector);
        assert_eq!(latents[1].support, LatentSupport::Positive);
        let failed: GuideInput = syn::parse_quote!([!] Schools ; struct G {});
        assert!(failed.latents.is_none());
    }

    #[test]
    fn an_unknown_word_is_an_error() {
        for bad in [
            quote!([mu: scalar positve] data [] M ; struct G {}),
            quote!([mu: matrix real] data [] M ; struct G {}),
            quote!([mu: scalar real] M ; struct G {}),
            quote!([mu: scalar real] data [y: tensor real] M ; struct G {}),
            quote!([mu: scalar real] data [y: vec complex] M ; struct G {}),
            quote!([mu: scalar real] data [] transfomed [v { mu }] M ; struct G {}),
            quote!([mu: scalar real] data [] transformed [v mu] M ; struct G {}),
        ] {
            assert!(syn::parse2::<GuideInput>(bad).is_err());
        }
    }

    #[test]
    fn the_hand_over_reads_back_transformed_values() {
        let input: GuideInput = syn::parse_quote! {
            [mu: scalar real, tau: scalar positive, z: vector real] data [y: vec real]
            transformed [theta for j { mu + tau * z[j] }, var { tau * tau }] Schools ; struct G {}
        };
        assert_eq!(input.transformed.len(), 2);
        assert!(input.transformed[0].name == "theta");
        assert!(
            input.transformed[0]
                .index
                .as_ref()
                .is_some_and(|j| j == "j")
        );
        assert_eq!(input.transformed[0].written(), "mu + tau * z[j]");
        assert_eq!(input.transformed[1].written(), "tau * tau");
        let call: GuideInput = syn::parse_quote! {
            [a: scalar real] data [] transformed [v { f(a.exp(), (a + 1.0) * 2.0) }] M ; struct G {}
        };
        assert_eq!(call.transformed[0].written(), "f(a.exp(), (a + 1.0) * 2.0)");
        // Older hand-overs without the list still parse.
        let none: GuideInput = syn::parse_quote!([mu: scalar real] data [] M ; struct G {});
        assert!(none.transformed.is_empty());
    }
}
