//! `#[variational(guide = Model)]` on a guide struct, checked against the
//! model's latents (handed over by the model, see [`crate::handover`]):
//! parse the fields (`ast`), lower them into a checked plan over the
//! guide's table of bindings (`lower`), then emit the guide (`emit`).

mod amortised_emit;
mod ast;
mod emit;
mod encoder;
mod encoder_emit;
mod lower;
mod mixing_emit;
mod mixing_family;
mod model_transformed;
mod per_point;
mod per_point_emit;
mod student_t;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;
use crate::handover::GuideInput;

pub use emit::{shell, stubs};

/// The model's name as the guide's attribute writes it (its path's last
/// segment), for messages and docs.
fn model_name(model: &syn::Path) -> String {
    model
        .segments
        .last()
        .map_or_else(String::new, |s| s.ident.to_string())
}

/// Expands `guide!`: the guide's `new` and `HierarchicalGuide`, or its
/// errors beside stubs of them (the struct is the attribute's, [`shell`]).
pub fn expand(input: TokenStream) -> TokenStream {
    let input: GuideInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(e) => return e.into_compile_error(),
    };
    let Some(latents) = &input.latents else {
        // The model failed and said why; the guide adds nothing.
        return stubs(&input.guide, Some(&input.model));
    };
    let cx = Ctxt::default();
    let (fields, failed) = ast::fields(&cx, &input.guide);
    let plan = lower::plan(&cx, &input, latents, (&fields, &failed));
    match cx.check() {
        Ok(()) => emit::guide(&plan),
        Err(e) => {
            let (stubs, e) = (
                stubs(&input.guide, Some(&input.model)),
                e.into_compile_error(),
            );
            quote::quote!(#stubs #e)
        }
    }
}
