//! The code of learned parameters (`#[param]`): their fields on the model
//! struct, their initial values, their bindings as locals of the
//! generated functions, and the `Model` methods that expose them
//! (`theta_layout`, `theta`, `set_theta`, `log_joint_theta`). A model
//! without learned parameters gets none of it.

use proc_macro2::TokenStream;
use quote::quote;

use super::super::plan::{Param, Plan};

/// The field on the model struct, as the user declared it.
pub fn field_def(p: &Param<'_>) -> TokenStream {
    let (attrs, vis, ident, ty) = (&p.field.attrs, &p.field.vis, &p.field.ident, &p.field.ty);
    quote!(#(#attrs)* #vis #ident: #ty)
}

/// `__init_params`: every learned parameter at its `init` (a vector's
/// every element), after the data are in place.
pub fn init_method(plan: &Plan<'_>) -> TokenStream {
    let inits = plan.params.iter().map(|p| {
        let (ident, ty, init, len) = (&p.field.ident, &p.field.ty, &p.init, &p.len);
        let name = ident.to_string();
        // Sizes may come from the data: checked against the memory budget
        // before allocating (`DataError::TooLarge`), never an abort.
        if let Some((rows, cols)) = &p.matrix {
            quote! {
                let (__rows, __cols): (usize, usize) = (#rows, #cols);
                ::iwhvi::__private::check_learned_size(#name, __rows, __cols)?;
                let __value: #ty = ::iwhvi::__private::nalgebra::DMatrix::from_element(__rows, __cols, #init);
                self.#ident = __value;
            }
        } else if p.scalar {
            quote!(self.#ident = #init;)
        } else {
            quote! {
                let __len: usize = #len;
                ::iwhvi::__private::check_learned_size(#name, __len, 1)?;
                let __value: #ty = ::core::convert::From::from(::std::vec![#init; __len]);
                self.#ident = __value;
            }
        }
    });
    quote! {
        #[allow(clippy::all)]
        fn __init_params(&mut self) -> ::core::result::Result<(), ::iwhvi::__private::DataError> {
            #(#inits)*
            ::core::result::Result::Ok(())
        }
    }
}

/// The learned parameters bound as locals from the model's fields, lifted
/// to `__T` (every generated function but `log_joint_theta`).
pub fn bindings_from_self(plan: &Plan<'_>) -> Vec<TokenStream> {
    let scalar = quote!(<__T as ::iwhvi::__private::Scalar>);
    plan.params
        .iter()
        .map(|p| {
            let ident = &p.field.ident;
            if p.matrix.is_some() {
                quote! {
                    let #ident: ::iwhvi::__private::nalgebra::DMatrix<__T> =
                        self.#ident.map(#scalar::constant);
                }
            } else if p.scalar {
                quote!(let #ident: __T = #scalar::constant(self.#ident);)
            } else {
                quote! {
                    let #ident: ::std::vec::Vec<__T> =
                        self.#ident.iter().map(|&__x| #scalar::constant(__x)).collect();
                }
            }
        })
        .collect()
}

/// The learned parameters bound from unconstrained `__theta: &[__T]`
/// through their transforms (no Jacobian: a parameter is a point).
pub fn bindings_from_theta(plan: &Plan<'_>) -> Vec<TokenStream> {
    plan.params
        .iter()
        .map(|p| {
            let (ident, transform, len) = (&p.field.ident, &p.transform, &p.len);
            // An unbounded parameter (the identity, `forward_scalar(u) =
            // (u, 0)`) is its coordinates as they are: one slice copy, not
            // a transform call per entry (a decoder's weight matrix).
            let identity = quote!(__transform == ::iwhvi::__private::Transform::Identity);
            if let Some((rows, cols)) = &p.matrix {
                // Column by column, nalgebra's storage order.
                quote! {
                    let (__rows, __cols) = (#rows, #cols);
                    let __transform = #transform;
                    let #ident: ::iwhvi::__private::nalgebra::DMatrix<__T> = if #identity {
                        ::iwhvi::__private::nalgebra::DMatrix::from_column_slice(
                            __rows, __cols, &__theta[__at_theta..__at_theta + __rows * __cols],
                        )
                    } else {
                        ::iwhvi::__private::nalgebra::DMatrix::from_fn(__rows, __cols, |__r, __c| {
                            __transform.forward_scalar(__theta[__at_theta + __c * __rows + __r]).0
                        })
                    };
                    __at_theta += __rows * __cols;
                }
            } else if p.scalar {
                quote! {
                    let #ident: __T = (#transform).forward_scalar(__theta[__at_theta]).0;
                    __at_theta += 1;
                }
            } else {
                quote! {
                    let __n = #len;
                    let __transform = #transform;
                    let #ident: ::std::vec::Vec<__T> = if #identity {
                        __theta[__at_theta..__at_theta + __n].to_vec()
                    } else {
                        (0..__n)
                            .map(|__k| __transform.forward_scalar(__theta[__at_theta + __k]).0)
                            .collect()
                    };
                    __at_theta += __n;
                }
            }
        })
        .collect()
}

/// The `Model` methods of a model with learned parameters; `steps` are the
/// log joint's steps, as `log_joint` runs them.
pub fn model_methods(plan: &Plan<'_>, steps: &[TokenStream]) -> TokenStream {
    if plan.params.is_empty() {
        return quote!();
    }
    let private = quote!(::iwhvi::__private);
    let core_model = quote!(::iwhvi::__private::iwhvi_core::model);
    let specs = plan.params.iter().map(|p| {
        let (name, transform, len) = (p.field.ident.to_string(), &p.transform, &p.len);
        if p.scalar {
            quote!(#private::LatentSpec::scalar(#name, #transform))
        } else {
            quote!(#private::LatentSpec::vector(#name, #len, #transform))
        }
    });
    let lengths_ok = plan.params.iter().filter(|p| !p.scalar).map(|p| {
        let (ident, len) = (&p.field.ident, &p.len);
        match &p.matrix {
            Some((rows, cols)) => {
                quote!(&& self.#ident.nrows() == #rows && self.#ident.ncols() == #cols)
            }
            None => quote!(&& self.#ident.len() == #len),
        }
    });
    let named = plan.params.iter().map(|p| {
        let (ident, name) = (&p.field.ident, p.field.ident.to_string());
        if p.scalar {
            quote!((::std::string::String::from(#name), ::std::vec![self.#ident]))
        } else {
            quote!((::std::string::String::from(#name), self.#ident.iter().copied().collect::<::std::vec::Vec<f64>>()))
        }
    });
    let assigns = plan.params.iter().map(|p| {
        let (ident, ty, name) = (&p.field.ident, &p.field.ty, p.field.ident.to_string());
        let value = quote!(__named.get(#name).expect("the layout has every learned parameter"));
        if let Some((rows, cols)) = &p.matrix {
            quote! {
                let __value: #ty = ::iwhvi::__private::nalgebra::DMatrix::from_column_slice(#rows, #cols, #value);
                self.#ident = __value;
            }
        } else if p.scalar {
            quote!(self.#ident = #value[0];)
        } else {
            quote! {
                let __value: #ty = ::core::convert::From::from(#value.to_vec());
                self.#ident = __value;
            }
        }
    });
    let theta_bindings = bindings_from_theta(plan);
    quote! {
        #[allow(clippy::all)]
        fn theta_layout(&self) -> #private::Layout {
            #private::Layout::new(::std::vec![#(#specs),*])
        }

        #[allow(clippy::all)]
        fn theta(&self) -> ::std::vec::Vec<f64> {
            let __layout = #private::Model::theta_layout(self);
            if !(true #(#lengths_ok)*) {
                return ::std::vec![f64::NAN; __layout.dim()];
            }
            let __named = #core_model::Latents::from_pairs([#(#named),*]);
            __layout
                .unconstrain(&__named)
                .unwrap_or_else(|_| ::std::vec![f64::NAN; __layout.dim()])
        }

        #[allow(clippy::all)]
        fn set_theta(&mut self, __theta: &[f64]) -> ::core::result::Result<(), #core_model::LayoutError> {
            if let ::core::option::Option::Some(__index) = __theta.iter().position(|__t| !__t.is_finite()) {
                return ::core::result::Result::Err(#core_model::LayoutError::NotFinite { index: __index, value: __theta[__index] });
            }
            let __named = #private::Model::theta_layout(self).constrain(__theta)?;
            #(#assigns)*
            ::core::result::Result::Ok(())
        }

        #[allow(unused_mut, unused_variables, unused_assignments, clippy::all)]
        fn log_joint_theta<__T: #private::Scalar>(&self, __theta: &[__T], __u: &[__T]) -> __T {
            let mut __at_theta = 0usize;
            #(#theta_bindings)*
            let mut __lp = <__T as #private::Scalar>::constant(0.0);
            let mut __at = 0usize;
            #(#steps)*
            __lp
        }
    }
}
