//! Code for the encoders of a guide (`encoder.rs`) and for the caches that
//! keep a per-point guide's group densities O(1) in the number of points.
//!
//! - The encoders without a context depend on the parameters and the data
//!   alone: `prepare` computes their outputs once per parameter vector
//!   into `workspace.params` (every output of every point, encoder after
//!   encoder, output after output), followed by a flag `1` saying they are
//!   there; each method binds `__enc_<name>_<o>` to its slice. A method
//!   called on a workspace that was never prepared (the flag is `0`)
//!   computes them itself.
//! - `prepare_reverse` (a guide with a per-point mixing variable or a
//!   reverse model's encoder with a context) puts the constrained latents
//!   `z = T(u)` of the draw into `workspace.reverse[..Z]`, then the
//!   outputs of the reverse model's context encoders (their context: the
//!   latents), then a flag `1`; the group methods and the reverse methods
//!   read them. `sample_conditional` clears the flag (a new draw).
//! - A conditional's encoder with a context (`psi[j]`) runs where it is
//!   called: on every point in the whole-ψ methods, on the point's row in
//!   its group (`PointView` outputs).
//!
//! Nothing here reports an error.

use proc_macro2::TokenStream;
use quote::quote;

use super::encoder::{Encoder, output_name};
use super::lower::Plan;

/// `Σ_e rows_e × outputs_e`: the entries of every encoder's outputs.
fn outputs_len(plan: &Plan<'_>) -> TokenStream {
    let terms = plan
        .encoders
        .iter()
        .enumerate()
        .filter(|(_, e)| e.context.is_empty())
        .map(|(ei, e)| {
            let outputs = e.outputs;
            quote!(+ self.__encoder_rows[#ei] * #outputs)
        });
    quote!((0usize #(#terms)*))
}

/// Encoder `ei`'s outputs at every point into `__one` (a new `Vec<__T>`,
/// output after output, each `rows` long), its weights found in the whole
/// `__params` by `__param_lens`.
pub fn evaluate_encoder(plan: &Plan<'_>, ei: usize) -> TokenStream {
    let pi = plan.params.len() + ei;
    quote! {
        let __w0: usize = self.__param_lens[..#pi].iter().sum();
        let __w = &__params[__w0..__w0 + self.__param_lens[#pi]];
        let mut __one: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
        self.__encoder_nets[#ei].apply_rows(__w, &self.__encoder_inputs[#ei], self.__encoder_rows[#ei], &mut __one);
    }
}

/// Every encoder's outputs appended to `__enc_buf` (a `Vec<__T>`), `__p`
/// advanced past their weights.
fn evaluate(plan: &Plan<'_>) -> TokenStream {
    let first = plan.params.len();
    let steps = plan.encoders.iter().enumerate().map(|(ei, e)| {
        let pi = first + ei;
        if !e.context.is_empty() {
            // Evaluated per draw (`context_outputs`).
            return quote!(__p += self.__param_lens[#pi];);
        }
        let one = evaluate_encoder(plan, ei);
        quote! {
            __p += self.__param_lens[#pi];
            {
                #one
                __enc_buf.extend_from_slice(&__one);
            }
        }
    });
    quote!(#(#steps)*)
}

/// The `workspace_lens` entry of `params`: the outputs, their flag, the
/// context encoders' first-layer data parts, then (a per-point guide that
/// draws by group) one marker per point, `1` for the points
/// `prepare_groups` prepared (none without encoders).
pub fn params_len(plan: &Plan<'_>) -> TokenStream {
    if plan.encoders.is_empty() {
        return quote!(0usize);
    }
    let (len, first, markers) = (outputs_len(plan), first_len(plan), markers_len(plan));
    quote!(#len + 1 + #first + #markers)
}

/// The number of point markers in `workspace.params` (`params_len`): the
/// points, for a per-point guide that draws by group, else none.
fn markers_len(plan: &Plan<'_>) -> TokenStream {
    if plan.by_group {
        quote!(self.__encoder_rows.iter().copied().max().unwrap_or(0))
    } else {
        quote!(0usize)
    }
}

/// Where the point markers start in `workspace.params`.
fn markers_at(plan: &Plan<'_>) -> TokenStream {
    let (len, first) = (outputs_len(plan), first_len(plan));
    quote!((#len + 1 + #first))
}

/// The width of encoder `e`'s first layer (its first hidden layer, or its
/// outputs without one).
fn first_width(e: &Encoder<'_>) -> usize {
    e.hidden.first().copied().unwrap_or(e.outputs)
}

/// `Σ_e rows_e × width_e` over the encoders with a context: the entries
/// of their first layers' data parts `b₀ + W₀ᵀ x_j`.
fn first_len(plan: &Plan<'_>) -> TokenStream {
    let terms = plan
        .encoders
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.context.is_empty())
        .map(|(ei, e)| {
            let width = first_width(e);
            quote!(+ self.__encoder_rows[#ei] * #width)
        });
    quote!((0usize #(#terms)*))
}

/// Where encoder `ei`'s first-layer parts start in `workspace.params`
/// (after the outputs, the flag and the earlier context encoders' parts).
fn first_at(plan: &Plan<'_>, ei: usize) -> TokenStream {
    let len = outputs_len(plan);
    let terms = plan.encoders[..ei]
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.context.is_empty())
        .map(|(ej, e)| {
            let width = first_width(e);
            quote!(+ self.__encoder_rows[#ej] * #width)
        });
    quote!((#len + 1 #(#terms)*))
}

/// The context encoders' first-layer data parts `b₀ + W₀ᵀ x_j`, of the
/// points `rows` iterates over, into `workspace.params` (each a network
/// op over the rows; `__params` the whole vector).
fn prepare_first(plan: &Plan<'_>, all: bool) -> TokenStream {
    let first = plan.params.len();
    let steps = plan.encoders.iter().enumerate().filter(|(_, e)| !e.context.is_empty()).map(|(ei, e)| {
        let pi = first + ei;
        let width = first_width(e);
        let at = first_at(plan, ei);
        let fill = if all {
            quote! {
                self.__encoder_nets[#ei].first_layer_rows(__w, &self.__encoder_inputs[#ei], __rows, &mut __one);
                __workspace.params[__at..__at + __rows * #width].copy_from_slice(&__one);
            }
        } else {
            // One op over the groups' rows, as `prepare`'s over every row
            // (each row's part is that of a call on the row alone), the
            // rows copied once, into the op.
            quote! {
                let __picked: ::std::vec::Vec<usize> =
                    __groups.iter().copied().filter(|&__j| __j < __rows).collect();
                self.__encoder_nets[#ei].first_layer_rows_of(__w, &self.__encoder_inputs[#ei], &__picked, &mut __one);
                for (__r, &__j) in __picked.iter().enumerate() {
                    __workspace.params[__at + __j * #width..__at + (__j + 1) * #width]
                        .copy_from_slice(&__one[__r * #width..(__r + 1) * #width]);
                }
            }
        };
        quote! {{
            let __w0: usize = self.__param_lens[..#pi].iter().sum();
            let __w = &__params[__w0..__w0 + self.__param_lens[#pi]];
            let __rows = self.__encoder_rows[#ei];
            let __at = #at;
            let mut __one: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
            #fill
        }}
    });
    quote!(#(#steps)*)
}

/// `prepare`: the encoders' outputs into `workspace.params` (nothing
/// without encoders: the trait's default).
pub fn prepare(plan: &Plan<'_>) -> TokenStream {
    if plan.encoders.is_empty() {
        return quote!();
    }
    let first = plan.params.len();
    let (len, evaluate) = (outputs_len(plan), evaluate(plan));
    let parts = prepare_first(plan, true);
    quote! {
        fn prepare<__T: ::iwhvi::__private::Scalar>(
            &self,
            __params: &[__T],
            __workspace: &mut ::iwhvi::__private::Workspace<__T>,
        ) {
            let mut __p: usize = self.__param_lens[..#first].iter().sum();
            let __len = #len;
            let mut __enc_buf: ::std::vec::Vec<__T> = ::std::vec::Vec::with_capacity(__len);
            #evaluate
            __workspace.params[..__len].copy_from_slice(&__enc_buf);
            __workspace.params[__len] = <__T as ::iwhvi::__private::Scalar>::constant(1.0);
            #parts
        }
    }
}

/// A method's encoder outputs `__enc_<name>_<o>` (each a slice over the
/// points), read from the prepared workspace or computed here; `__p` is
/// advanced past the encoders' weights either way.
pub fn outputs(plan: &Plan<'_>) -> TokenStream {
    outputs_reading(plan, quote!(== 1.0))
}

/// [`outputs`] for a group's methods, which also read a workspace that
/// `prepare_groups` filled for some points only (flag `2`): the caller
/// asks only for the groups it prepared.
pub fn group_outputs(plan: &Plan<'_>) -> TokenStream {
    outputs_reading(plan, quote!(>= 1.0))
}

/// `prepare_groups` of an amortised guide with encoders, or of a per-point
/// guide that draws by group: the encoders' outputs at the groups' points
/// alone (group `j` reads row `j`), then the flag `2` (whole-vector
/// methods compute for themselves on such a workspace), then the context
/// encoders' first-layer parts at those points and (a per-point guide)
/// the points' markers.
pub fn prepare_groups(plan: &Plan<'_>) -> TokenStream {
    let amortised = plan.amortised && plan.encoders.iter().any(|e| e.context.is_empty());
    let by_group = plan.by_group && !plan.encoders.is_empty();
    if !(amortised || by_group) {
        return quote!();
    }
    let markers = plan.by_group.then(|| {
        let (at, len) = (markers_at(plan), markers_len(plan));
        quote! {
            let (__at, __len) = (#at, #len);
            let __markers = &mut __workspace.params[__at..__at + __len];
            __markers.fill(<__T as ::iwhvi::__private::Scalar>::constant(0.0));
            for &__j in __groups.iter().filter(|&&__j| __j < __len) {
                __markers[__j] = <__T as ::iwhvi::__private::Scalar>::constant(1.0);
            }
        }
    });
    let first = plan.params.len();
    let len = outputs_len(plan);
    let parts = prepare_first(plan, false);
    let steps = plan.encoders.iter().enumerate().map(|(ei, e)| {
        let pi = first + ei;
        let outputs = e.outputs;
        if !e.context.is_empty() {
            return quote!(__p += self.__param_lens[#pi];);
        }
        quote! {{
            let __w = &__params[__p..__p + self.__param_lens[#pi]];
            __p += self.__param_lens[#pi];
            let __rows = self.__encoder_rows[#ei];
            __picked.clear();
            __picked.extend(__groups.iter().copied().filter(|&__j| __j < __rows));
            // One network op over the groups' rows (each row's outputs
            // are those of a call on the row alone), the rows copied
            // once, into the op.
            self.__encoder_nets[#ei].apply_rows_of(__w, &self.__encoder_inputs[#ei], &__picked, &mut __one);
            for (__r, &__j) in __picked.iter().enumerate() {
                for __o in 0..#outputs {
                    __workspace.params[__at + __o * __rows + __j] = __one[__o * __picked.len() + __r];
                }
            }
            __at += __rows * #outputs;
        }}
    });
    quote! {
        fn prepare_groups<__T: ::iwhvi::__private::Scalar>(
            &self,
            __params: &[__T],
            __groups: &[usize],
            __workspace: &mut ::iwhvi::__private::Workspace<__T>,
        ) {
            let mut __p: usize = self.__param_lens[..#first].iter().sum();
            let mut __at = 0usize;
            let mut __one: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
            let mut __picked: ::std::vec::Vec<usize> = ::std::vec::Vec::new();
            #(#steps)*
            __workspace.params[#len] = <__T as ::iwhvi::__private::Scalar>::constant(2.0);
            #parts
            #markers
        }
    }
}

fn outputs_reading(plan: &Plan<'_>, trusted: TokenStream) -> TokenStream {
    if plan.encoders.is_empty() {
        return quote!();
    }
    let first = plan.params.len();
    let (len, evaluate) = (outputs_len(plan), evaluate(plan));
    let binds: Vec<TokenStream> = plan
        .encoders
        .iter()
        .enumerate()
        .map(|(ei, e)| {
            let pi = first + ei;
            let outputs = e.outputs;
            if !e.context.is_empty() {
                return quote!(__p += self.__param_lens[#pi];);
            }
            let names = (0..e.outputs).map(|o| {
            let name = output_name(e.ident, o);
            quote!(let #name: &[__T] = &__enc_all[__at + #o * __rows..__at + (#o + 1) * __rows];)
        });
            quote! {
                __p += self.__param_lens[#pi];
                let __rows = self.__encoder_rows[#ei];
                #(#names)*
                __at += __rows * #outputs;
            }
        })
        .collect();
    if !plan.encoders.iter().any(|e| e.context.is_empty()) {
        return quote!(#(#binds)*);
    }
    quote! {
        let __enc_len = #len;
        let mut __enc_buf: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
        let __enc_all: &[__T] = if <__T as ::iwhvi::__private::Scalar>::value(__workspace.params[__enc_len]) #trusted {
            &__workspace.params[..__enc_len]
        } else {
            let mut __p = __p;
            #evaluate
            &__enc_buf
        };
        let mut __at = 0usize;
        #(#binds)*
    }
}

/// An encoder a reverse model calls with a context (latents): evaluated
/// once per draw by `prepare_reverse`.
fn draw_context(e: &Encoder<'_>) -> bool {
    e.reverse && !e.context.is_empty()
}

/// An encoder a conditional calls with a context (the per-point mixing
/// variable): evaluated where it is called, per ψ.
fn mixing_context(e: &Encoder<'_>) -> bool {
    !e.reverse && !e.context.is_empty()
}

/// `Σ_e rows_e × outputs_e` over the encoders of `draw_context`.
fn context_len(plan: &Plan<'_>) -> TokenStream {
    let terms = plan
        .encoders
        .iter()
        .enumerate()
        .filter(|(_, e)| draw_context(e))
        .map(|(ei, e)| {
            let outputs = e.outputs;
            quote!(+ self.__encoder_rows[#ei] * #outputs)
        });
    quote!((0usize #(#terms)*))
}

/// Whether the guide caches per draw in `workspace.reverse`: with a
/// per-point mixing variable or an encoder with a context.
fn caches_draw(plan: &Plan<'_>) -> bool {
    plan.per_point.is_some() || plan.encoders.iter().any(draw_context)
}

/// Where `workspace.reverse`'s flag sits: after `z` and the context
/// encoders' outputs.
fn draw_flag(plan: &Plan<'_>) -> TokenStream {
    let len = context_len(plan);
    quote!((self.__z_dim + #len))
}

/// The `workspace_lens` entry of `reverse`: the constrained latents, the
/// context encoders' outputs and their flag.
pub fn reverse_len(plan: &Plan<'_>) -> TokenStream {
    if !caches_draw(plan) {
        return quote!(0usize);
    }
    let flag = draw_flag(plan);
    quote!(#flag + 1)
}

/// The outputs of the encoders `which` picks at every point, appended to
/// `__ctx_buf` column by column (their context items bound: the latents,
/// or the mixing variable's slice; `__params` the whole vector). Each row
/// starts from its first-layer data part when `prepare` left them in
/// `workspace.params` (flag `1`), else from its inputs: the same bits.
/// With `partial` (`prepare_reverse` of a guide that draws by group), on a
/// workspace `prepare_groups` filled (flag `2`, `__partial` true) only the
/// marked points' rows are computed (from their parts), the others left
/// `0`: only their groups' methods read them.
fn evaluate_context(
    plan: &Plan<'_>,
    which: fn(&Encoder<'_>) -> bool,
    partial: bool,
) -> TokenStream {
    let first = plan.params.len();
    let flag = outputs_len(plan);
    let markers = markers_at(plan);
    let (use_parts, skip) = if partial {
        (
            quote!(== 1.0 || __partial),
            quote! {
                if __partial && <__T as ::iwhvi::__private::Scalar>::value(__workspace.params[#markers + __r]) != 1.0 {
                    continue;
                }
            },
        )
    } else {
        (quote!(== 1.0), quote!())
    };
    let steps = plan.encoders.iter().enumerate().filter(|(_, e)| which(e)).map(|(ei, e)| {
        let pi = first + ei;
        let outputs = e.outputs;
        let (width, at) = (first_width(e), first_at(plan, ei));
        let items = e.context.iter().map(|c| {
            let name = &c.name;
            if c.indexed { quote!(#name[__r]) } else { quote!(#name) }
        });
        quote! {
            {
                let __w0: usize = self.__param_lens[..#pi].iter().sum();
                let __w = &__params[__w0..__w0 + self.__param_lens[#pi]];
                let __rows = self.__encoder_rows[#ei];
                let __width = self.__encoder_inputs[#ei].len() / __rows.max(1);
                let __start = __ctx_buf.len();
                __ctx_buf.resize(__start + __rows * #outputs, <__T as ::iwhvi::__private::Scalar>::constant(0.0));
                let __parts: ::core::option::Option<&[__T]> =
                    (<__T as ::iwhvi::__private::Scalar>::value(__workspace.params[#flag]) #use_parts)
                        .then(|| &__workspace.params[#at..#at + __rows * #width]);
                let mut __row: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
                for __r in 0..__rows {
                    #skip
                    let __c = [#(#items),*];
                    match __parts {
                        ::core::option::Option::Some(__parts) => self.__encoder_nets[#ei].apply_row_context_from(
                            __w,
                            &__parts[__r * #width..(__r + 1) * #width],
                            &__c,
                            &mut __row,
                        ),
                        ::core::option::Option::None => self.__encoder_nets[#ei].apply_row_context(
                            __w,
                            &self.__encoder_inputs[#ei][__r * __width..(__r + 1) * __width],
                            &__c,
                            &mut __row,
                        ),
                    }
                    for __o in 0..#outputs {
                        __ctx_buf[__start + __o * __rows + __r] = __row[__o];
                    }
                }
            }
        }
    });
    quote!(#(#steps)*)
}

/// A reverse method's context-encoder outputs `__enc_<name>_<o>`, read
/// from `workspace.reverse` when `prepare_reverse` filled it for every
/// point (flag `1`), else computed here (the latents bound before it).
pub fn context_outputs(plan: &Plan<'_>) -> TokenStream {
    context_outputs_reading(plan, quote!(== 1.0))
}

/// [`context_outputs`] for a group's reverse methods, which also read what
/// `prepare_reverse` computed for the prepared points only (flag `2`):
/// the caller asks only for the groups it prepared.
pub fn group_context_outputs(plan: &Plan<'_>) -> TokenStream {
    context_outputs_reading(plan, quote!(>= 1.0))
}

fn context_outputs_reading(plan: &Plan<'_>, trusted: TokenStream) -> TokenStream {
    if !plan.encoders.iter().any(draw_context) {
        return quote!();
    }
    let (len, flag, evaluate) = (
        context_len(plan),
        draw_flag(plan),
        evaluate_context(plan, draw_context, false),
    );
    let binds = bind_outputs(plan, draw_context, &quote!(__ctx_all));
    quote! {
        let mut __ctx_buf: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
        let __ctx_all: &[__T] = if <__T as ::iwhvi::__private::Scalar>::value(__workspace.reverse[#flag]) #trusted {
            &__workspace.reverse[self.__z_dim..self.__z_dim + #len]
        } else {
            #evaluate
            &__ctx_buf
        };
        let mut __at = 0usize;
        #binds
    }
}

/// The outputs `__enc_<name>_<o>` of the encoders `which` selects, each a
/// slice over the points of `buffer` (laid out by [`evaluate_context`]:
/// per encoder, its outputs one after another, each `rows` long).
fn bind_outputs(
    plan: &Plan<'_>,
    which: fn(&Encoder<'_>) -> bool,
    buffer: &TokenStream,
) -> TokenStream {
    let binds = plan
        .encoders
        .iter()
        .enumerate()
        .filter(|(_, e)| which(e))
        .map(|(ei, e)| {
            let outputs = e.outputs;
            let names = (0..e.outputs).map(|o| {
                let name = output_name(e.ident, o);
                quote!(let #name: &[__T] = &#buffer[__at + #o * __rows..__at + (#o + 1) * __rows];)
            });
            quote! {
                let __rows = self.__encoder_rows[#ei];
                #(#names)*
                __at += __rows * #outputs;
            }
        });
    quote!(#(#binds)*)
}

/// `prepare_reverse`: `z = T(u)` and the context encoders' outputs into
/// `workspace.reverse`, then its flag: `1`, or `2` when a guide that draws
/// by group computed them at the points `prepare_groups` prepared alone.
pub fn prepare_reverse(plan: &Plan<'_>, bind_latents: &[TokenStream]) -> TokenStream {
    if !caches_draw(plan) {
        return quote!();
    }
    let none = vec![false; plan.conditionals.len()];
    let (len, flag) = (context_len(plan), draw_flag(plan));
    let evaluate = evaluate_context(plan, draw_context, plan.by_group);
    let partial = if plan.by_group && !plan.encoders.is_empty() {
        let params_flag = outputs_len(plan);
        quote!(<__T as ::iwhvi::__private::Scalar>::value(__workspace.params[#params_flag]) == 2.0)
    } else {
        quote!(false)
    };
    quote! {
        fn prepare_reverse<__T: ::iwhvi::__private::Scalar>(
            &self,
            __params: &[__T],
            __u: &[__T],
            __workspace: &mut ::iwhvi::__private::Workspace<__T>,
        ) {
            let _ = ::iwhvi::__private::constrain_blocks(
                (&self.__offsets, &self.__lens, &self.__z_offsets),
                &self.__transforms,
                &[#(#none),*],
                __u,
                &mut __workspace.reverse[..self.__z_dim],
            );
            let mut __ctx_buf: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
            let __partial: bool = #partial;
            {
                let __z: &[__T] = &__workspace.reverse[..self.__z_dim];
                #(#bind_latents)*
                #evaluate
            }
            let __len = #len;
            __workspace.reverse[self.__z_dim..self.__z_dim + __len].copy_from_slice(&__ctx_buf);
            __workspace.reverse[#flag] =
                <__T as ::iwhvi::__private::Scalar>::constant(if __partial { 2.0 } else { 1.0 });
        }
    }
}

/// A group method's latents bound from `workspace.reverse` when
/// `prepare_reverse` filled it (flag `1` or `2`: the latents are whole
/// either way), else constrained here into `workspace.scratch`.
pub fn cached_latents(plan: &Plan<'_>, bind_latents: &[TokenStream]) -> TokenStream {
    let flag = draw_flag(plan);
    quote! {
        let __z: &[__T] = if <__T as ::iwhvi::__private::Scalar>::value(__workspace.reverse[#flag]) >= 1.0 {
            &__workspace.reverse[..self.__z_dim]
        } else {
            let __fresh = ::iwhvi::__private::scratch(&mut __workspace.scratch, self.__z_dim);
            let _ = ::iwhvi::__private::constrain_blocks(
                (&self.__offsets, &self.__lens, &self.__z_offsets),
                &self.__transforms,
                &::std::vec![false; self.__transforms.len()],
                __u,
                __fresh,
            );
            __fresh
        };
        #(#bind_latents)*
    }
}

/// A whole-ψ conditional method's mixing-context encoder outputs
/// `__enc_<name>_<o>`, each a slice over the points (after the mixing
/// variables are bound).
pub fn mixing_context_outputs(plan: &Plan<'_>) -> TokenStream {
    if !plan.encoders.iter().any(mixing_context) {
        return quote!();
    }
    let evaluate = evaluate_context(plan, mixing_context, false);
    let binds = bind_outputs(plan, mixing_context, &quote!(__ctx_buf));
    quote! {
        let mut __ctx_buf: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
        #evaluate
        let mut __at = 0usize;
        #binds
    }
}

/// Point `__j`'s group: the mixing-context encoders on its row alone, at
/// its `ψ_j = __psi[0]`, each output a `PointView` answering at `__j`.
/// The row starts from its first-layer data part when `prepare` (or
/// `prepare_groups`) left it in `workspace.params`, so that only the
/// context's terms are new per `ψ_j`; else from its inputs (the same bits).
pub fn mixing_context_point(plan: &Plan<'_>) -> TokenStream {
    let first = plan.params.len();
    let flag = outputs_len(plan);
    let steps = plan.encoders.iter().enumerate().filter(|(_, e)| mixing_context(e)).map(|(ei, e)| {
        let pi = first + ei;
        let (width, at) = (first_width(e), first_at(plan, ei));
        // Each per-point variable at its coordinate of `ψ_j = __psi`.
        let items = e.context.iter().map(|c| {
            let q = plan
                .mixing
                .iter()
                .enumerate()
                .find(|(_, m)| *m.ident == c.name)
                .and_then(|(mi, _)| plan.point_slot(mi))
                .unwrap_or(0);
            quote!(__psi[#q])
        });
        let names = (0..e.outputs).map(|o| {
            let name = output_name(e.ident, o);
            quote!(let #name = ::iwhvi::__private::iwhvi_core::generated::PointView::new(__row[#o], __j);)
        });
        quote! {
            let __w0: usize = self.__param_lens[..#pi].iter().sum();
            let __w = &__params[__w0..__w0 + self.__param_lens[#pi]];
            let __width = self.__encoder_inputs[#ei].len() / self.__encoder_rows[#ei].max(1);
            let mut __row: ::std::vec::Vec<__T> = ::std::vec::Vec::new();
            let __c = [#(#items),*];
            if <__T as ::iwhvi::__private::Scalar>::value(__workspace.params[#flag]) >= 1.0 {
                let __at = #at + __j * #width;
                self.__encoder_nets[#ei].apply_row_context_from(
                    __w,
                    &__workspace.params[__at..__at + #width],
                    &__c,
                    &mut __row,
                );
            } else {
                self.__encoder_nets[#ei].apply_row_context(
                    __w,
                    &self.__encoder_inputs[#ei][__j * __width..(__j + 1) * __width],
                    &__c,
                    &mut __row,
                );
            }
            #(#names)*
        }
    });
    quote!(#(#steps)*)
}

/// `sample_conditional`'s first step: a new draw of `u` makes what
/// `prepare_reverse` cached stale, so its flag is cleared (the methods then
/// compute for themselves until `prepare_reverse` runs at the new `u`).
pub fn invalidate_draw(plan: &Plan<'_>) -> TokenStream {
    if !caches_draw(plan) {
        return quote!();
    }
    let flag = draw_flag(plan);
    quote!(__workspace.reverse[#flag] = <__T as ::iwhvi::__private::Scalar>::constant(0.0);)
}
