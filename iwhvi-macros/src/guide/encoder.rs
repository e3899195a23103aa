//! Encoders in a guide struct (issue 16, design note §2):
//! `#[encoder(input = [y[j], sigma[j]], hidden = [16], activation = tanh, outputs = 2)] enc: Mlp`,
//! a network shared by the points `j` of a vector latent, from the data
//! of the point to the arguments of its conditional, called as
//! `enc(j)[o]` inside a conditional with `for j`.
//!
//! The call is rewritten before lowering: `enc(j)[o]` becomes
//! `__enc_enc_o[j]`, a vector local of the generated methods holding
//! output `o` of every point (the network is evaluated once per point
//! and parameter vector, `Mlp::apply_rows`, see `encoder_emit.rs`),
//! so that the rest of the expression is lowered as any other.
//!
//! `context = [z[j], m, psi[j]]` adds per-draw values of the point to the
//! network's first layer: latents for an encoder a per-point reverse
//! model calls (`τ(ψ_j | z_j, x_j)`, its weights then the reverse
//! model's), the per-point mixing variable for one a conditional calls
//! (`q(z_j | ψ_j, x_j)`). `encoder_emit.rs` evaluates them.

use std::collections::BTreeSet;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitInt};

use crate::ctxt::Ctxt;
use crate::family;
use crate::handover::{DataInfo, DataShape};
use crate::model::ast::{DistCall, Once, parse_options};

/// The activations an encoder may use, with their `Activation` variants.
const ACTIVATIONS: [(&str, &str); 3] =
    [("tanh", "Tanh"), ("relu", "Relu"), ("softplus", "Softplus")];

/// `#[encoder(input = [...], hidden = [...], activation = ..., outputs = N)]`.
pub struct EncoderArgs {
    pub input: Vec<Expr>,
    /// `context = [z[j], ...]`: per-draw values of the point (latents),
    /// for an encoder a reverse model calls.
    pub context: Vec<Expr>,
    pub hidden: Vec<usize>,
    /// The `Activation` variant.
    pub activation: Ident,
    pub outputs: usize,
}

fn usize_lit(lit: &LitInt) -> syn::Result<usize> {
    lit.base10_parse()
}

fn int_list(input: ParseStream) -> syn::Result<Vec<usize>> {
    let content;
    syn::bracketed!(content in input);
    let items = content.parse_terminated(LitInt::parse, syn::Token![,])?;
    items
        .iter()
        .map(|l| {
            let n = usize_lit(l)?;
            if n == 0 {
                return Err(syn::Error::new(
                    l.span(),
                    "a hidden layer has at least one unit",
                ));
            }
            Ok(n)
        })
        .collect()
}

impl Parse for EncoderArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (mut items, mut context, mut hidden, mut activation, mut outputs) = (
            Once::default(),
            Once::default(),
            Once::default(),
            Once::default(),
            Once::default(),
        );
        let usage = "write `#[encoder(input = [y[j], ...], hidden = [16], activation = tanh, outputs = 2)]`";
        parse_options(input, |key, input| match key.to_string().as_str() {
            "input" => {
                let content;
                syn::bracketed!(content in input);
                let list = content.parse_terminated(Expr::parse, syn::Token![,])?;
                if list.is_empty() {
                    return Err(syn::Error::new(
                        key.span(),
                        "an encoder needs at least one input",
                    ));
                }
                items.set(key, list.into_iter().collect())
            }
            "context" => {
                let content;
                syn::bracketed!(content in input);
                let list = content.parse_terminated(Expr::parse, syn::Token![,])?;
                context.set(key, list.into_iter().collect())
            }
            "hidden" => hidden.set(key, int_list(input)?),
            "activation" => {
                let word: Ident = input.parse()?;
                let Some((_, variant)) = ACTIVATIONS.iter().find(|(w, _)| word == w) else {
                    let hint =
                        family::closest(&word.to_string(), ACTIVATIONS.iter().map(|(w, _)| *w))
                            .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
                    return Err(syn::Error::new(
                        word.span(),
                        format!(
                            "unknown activation `{word}`: use `tanh`, `relu` or `softplus`{hint}"
                        ),
                    ));
                };
                activation.set(key, Ident::new(variant, word.span()))
            }
            "outputs" => {
                let lit: LitInt = input.parse()?;
                let n = usize_lit(&lit)?;
                if n == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "an encoder has at least one output",
                    ));
                }
                outputs.set(key, n)
            }
            other => Err(syn::Error::new(
                key.span(),
                format!("unknown option `{other}`: {usage}"),
            )),
        })?;
        let input_items = items
            .get()
            .ok_or_else(|| input.error(format!("give the encoder's inputs: {usage}")))?;
        let outputs = outputs
            .get()
            .ok_or_else(|| input.error(format!("give the encoder's number of outputs: {usage}")))?;
        Ok(Self {
            input: input_items,
            context: context.get().unwrap_or_default(),
            hidden: hidden.get().unwrap_or_default(),
            activation: activation
                .get()
                .unwrap_or_else(|| Ident::new("Tanh", Span::call_site())),
            outputs,
        })
    }
}

/// How an input item reads its data at the point `j`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// `y[j]`: an element of a data vector.
    Element,
    /// `x.row(j)`: a data matrix's row (one point per row).
    Row,
    /// `x.column(j)`: a data matrix's column (one point per column, each
    /// point's values contiguous in nalgebra's column-major storage).
    Column,
}

/// One input item: a data vector at the point, or a data matrix's row or
/// column.
pub struct InputItem {
    pub data: Ident,
    pub form: InputForm,
}

/// A checked encoder.
pub struct Encoder<'a> {
    pub ident: &'a Ident,
    pub inputs: Vec<InputItem>,
    pub hidden: Vec<usize>,
    pub activation: Ident,
    pub outputs: usize,
    /// The latents whose conditionals or reverse models call it (their
    /// lengths are its rows).
    pub latents: Vec<String>,
    /// Its per-draw inputs (`context = [...]`).
    pub context: Vec<ContextItem>,
    /// Called by a reverse model (its weights are the reverse model's).
    pub reverse: bool,
}

/// One context item: latent `name` of the guide, `name[j]` for a vector
/// one (its element at the point), `name` for a scalar one; or the
/// per-point mixing variable at the point, `psi[j]` (`mixing`).
pub struct ContextItem {
    pub name: Ident,
    pub indexed: bool,
    pub mixing: bool,
}

/// The name of output `o` of encoder `enc` in the generated code.
pub fn output_name(encoder: &Ident, o: usize) -> Ident {
    format_ident!("__enc_{}_{}", encoder, o)
}

/// Checks an encoder's inputs against the model's data: `name[j]` of a
/// data vector, `name.row(j)` or `name.column(j)` of a data matrix.
pub fn inputs(
    cx: &Ctxt,
    data: &[DataInfo],
    others: &[(&Ident, &'static str)],
    items: &[Expr],
) -> Vec<InputItem> {
    let form = "an encoder's input is data of the point `j`: `y[j]` for a data vector, `x.row(j)` (or `x.column(j)`, one point per column) for a data matrix";
    let mut checked = Vec::new();
    for item in items {
        let (receiver, read) = match item {
            Expr::Index(ix) if index_ident(&ix.index).is_some() => (&*ix.expr, InputForm::Element),
            Expr::MethodCall(m)
                if (m.method == "row" || m.method == "column")
                    && m.args.len() == 1
                    && index_ident(&m.args[0]).is_some() =>
            {
                let read = if m.method == "row" {
                    InputForm::Row
                } else {
                    InputForm::Column
                };
                (&*m.receiver, read)
            }
            _ => {
                cx.error_spanned_by(item, form);
                continue;
            }
        };
        let Some(name) = index_ident(receiver) else {
            cx.error_spanned_by(item, form);
            continue;
        };
        if let Some((_, what)) = others.iter().find(|(i, _)| *i == name) {
            cx.error_spanned_by(
                name,
                format!("`{name}` is {what}: an encoder's input is the model's data (what changes with the draw is not an input)"),
            );
            continue;
        }
        let Some(info) = data.iter().find(|d| d.name == *name) else {
            let names: Vec<String> = data.iter().map(|d| d.name.to_string()).collect();
            let hint = family::closest(&name.to_string(), names.iter().map(String::as_str))
                .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
            cx.error_spanned_by(name, format!("the model has no data `{name}`{hint}"));
            continue;
        };
        let numeric = info.elem == "real" || info.elem == "integer";
        match (info.shape, read) {
            (DataShape::Vec, InputForm::Element) if numeric => {}
            (DataShape::Matrix, InputForm::Row | InputForm::Column) => {}
            (DataShape::Matrix, InputForm::Element) => {
                cx.error_spanned_by(
                    item,
                    format!("`{name}` is a data matrix: give its row, `{name}.row(j)`, or its column, `{name}.column(j)` (one point per column)"),
                );
                continue;
            }
            _ => {
                cx.error_spanned_by(
                    item,
                    format!("`{name}` is not a vector of numbers nor a matrix: {form}"),
                );
                continue;
            }
        }
        checked.push(InputItem {
            data: name.clone(),
            form: read,
        });
    }
    checked
}

fn index_ident(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(p) => p.path.get_ident(),
        _ => None,
    }
}

/// The encoders' declarations a conditional can call: name and outputs.
pub struct Callable<'a> {
    pub ident: &'a Ident,
    pub outputs: usize,
    /// A field whose attribute has a mistake (reported): a call of it
    /// drops the conditional silently.
    pub failed: bool,
}

/// Rewrites the encoder calls `enc(j)[o]` of a conditional's arguments
/// (`index` its `for j`), reporting misuse; the names of the encoders
/// called are added to `called`.
pub fn rewrite_call(
    cx: &Ctxt,
    encoders: &[Callable<'_>],
    call: &DistCall,
    index: Option<&Ident>,
    latent: &Ident,
    called: &mut BTreeSet<String>,
) -> Result<Option<DistCall>, ()> {
    if encoders.is_empty() {
        return Ok(None);
    }
    let mut changed = false;
    let mut bad = false;
    let mut args = Vec::new();
    for arg in &call.args {
        let tokens = quote!(#arg);
        let mut found = false;
        let rewritten = rewrite_tokens(
            cx,
            encoders,
            tokens,
            (index, latent),
            called,
            (&mut found, &mut bad),
        );
        if !found {
            args.push(arg.clone());
            continue;
        }
        changed = true;
        match syn::parse2::<Expr>(rewritten) {
            Ok(e) => args.push(e),
            Err(e) => {
                cx.syn_error(e);
                return Err(());
            }
        }
    }
    if bad {
        return Err(());
    }
    Ok(changed.then(|| DistCall {
        user: call.user.clone(),
        name: call.name.clone(),
        args,
        tokens: call.tokens.clone(),
    }))
}

fn rewrite_tokens(
    cx: &Ctxt,
    encoders: &[Callable<'_>],
    tokens: TokenStream,
    (index, latent): (Option<&Ident>, &Ident),
    called: &mut BTreeSet<String>,
    (found, bad): (&mut bool, &mut bool),
) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < trees.len() {
        let tree = &trees[k];
        let encoder = match tree {
            TokenTree::Ident(i) => encoders.iter().find(|e| e.ident == i),
            _ => None,
        };
        // `.enc` is a method, not the encoder.
        let after_dot = matches!(out.last(), Some(TokenTree::Punct(p)) if p.as_char() == '.');
        let called_with = match trees.get(k + 1) {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => Some(g),
            _ => None,
        };
        match (encoder, called_with) {
            (Some(enc), Some(_)) if !after_dot && enc.failed => {
                *found = true;
                *bad = true;
                k += 2;
            }
            (Some(enc), Some(args)) if !after_dot => {
                *found = true;
                called.insert(enc.ident.to_string());
                let name = enc.ident;
                let arg: Vec<TokenTree> = args.stream().into_iter().collect();
                let point = match arg.as_slice() {
                    [TokenTree::Ident(i)] => Some(i.clone()),
                    _ => None,
                };
                let Some(point) = point else {
                    cx.error_spanned_by(
                        args.stream(),
                        format!("encoder `{name}` takes one argument, the point's index: write `{name}(j)[0]` in a conditional with `for j`"),
                    );
                    *bad = true;
                    k += 2;
                    continue;
                };
                *bad |= index != Some(&point);
                match index {
                    None => cx.error_spanned_by(
                        name_span_tokens(tree),
                        format!("encoder `{name}` is called per point: `{name}(j)` needs a conditional with `for j` over a vector latent, and `{latent}`'s has none"),
                    ),
                    Some(i) if *i != point => cx.error_spanned_by(
                        &point,
                        format!("call encoder `{name}` at this conditional's index: `{name}({i})`"),
                    ),
                    Some(_) => {}
                }
                let output = match trees.get(k + 2) {
                    Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => {
                        syn::parse2::<LitInt>(g.stream())
                            .ok()
                            .and_then(|l| usize_lit(&l).ok().map(|n| (n, g.stream())))
                    }
                    _ => None,
                };
                let Some((o, o_tokens)) = output else {
                    cx.error_spanned_by(
                        args.stream(),
                        format!("pick one output of encoder `{name}` with a number: `{name}({point})[0]`"),
                    );
                    *bad = true;
                    k += 2;
                    continue;
                };
                if o >= enc.outputs {
                    *bad = true;
                    cx.error_spanned_by(
                        o_tokens,
                        format!(
                            "encoder `{name}` has {} output{}: its outputs are `{name}({point})[0]` to `{name}({point})[{}]`",
                            enc.outputs,
                            if enc.outputs == 1 { "" } else { "s" },
                            enc.outputs - 1
                        ),
                    );
                }
                let local = output_name(enc.ident, o.min(enc.outputs - 1));
                let local = Ident::new(&local.to_string(), enc.ident.span());
                out.extend(quote!(#local[#point]));
                k += 3;
            }
            _ => {
                match tree {
                    TokenTree::Group(g) => {
                        let inner = rewrite_tokens(
                            cx,
                            encoders,
                            g.stream(),
                            (index, latent),
                            called,
                            (&mut *found, &mut *bad),
                        );
                        let mut group = proc_macro2::Group::new(g.delimiter(), inner);
                        group.set_span(g.span());
                        out.push(TokenTree::Group(group));
                    }
                    other => out.push(other.clone()),
                }
                k += 1;
            }
        }
    }
    out.into_iter().collect()
}

fn name_span_tokens(tree: &TokenTree) -> TokenStream {
    TokenStream::from(tree.clone())
}

/// Checks an encoder's context against the guide's latents (`latents`:
/// name and whether it is a vector) and mixing variables (`per_point` the
/// per-point one): `z[j]` of a vector latent, `m` of a scalar one,
/// `psi[j]` of the per-point mixing variable.
pub fn context(
    cx: &Ctxt,
    latents: &[(&Ident, bool)],
    (mixing, per_point): (&[&Ident], &[&Ident]),
    items: &[Expr],
) -> Vec<ContextItem> {
    let form = "an encoder's context is a value of the point's draw: `z[j]` for a vector latent, `m` for a scalar one, `psi[j]` for the per-point mixing variable";
    let mut checked = Vec::new();
    for item in items {
        let (name, indexed) = match item {
            Expr::Index(ix) if index_ident(&ix.index).is_some() => (index_ident(&ix.expr), true),
            other => (index_ident(other), false),
        };
        let Some(name) = name else {
            cx.error_spanned_by(item, form);
            continue;
        };
        if per_point.contains(&name) {
            if indexed {
                checked.push(ContextItem {
                    name: name.clone(),
                    indexed,
                    mixing: true,
                });
            } else {
                cx.error_spanned_by(
                    item,
                    format!("`{name}` is the per-point mixing variable: give its value at the point, `{name}[j]`"),
                );
            }
            continue;
        }
        if mixing.contains(&name) {
            cx.error_spanned_by(
                name,
                format!("`{name}` is a global mixing variable: an encoder's context reads the point's latents or its per-point mixing variable (`#[mixing(len = .., for j)]`)"),
            );
            continue;
        }
        let Some((_, vector)) = latents.iter().find(|(l, _)| *l == name) else {
            let names: Vec<String> = latents.iter().map(|(l, _)| l.to_string()).collect();
            let hint = family::closest(&name.to_string(), names.iter().map(String::as_str))
                .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
            cx.error_spanned_by(
                name,
                format!("the guide has no latent `{name}` for an encoder's context{hint}"),
            );
            continue;
        };
        match (vector, indexed) {
            (true, false) => cx.error_spanned_by(
                item,
                format!("`{name}` is a vector latent: give its element at the point, `{name}[j]`"),
            ),
            (false, true) => {
                cx.error_spanned_by(item, format!("`{name}` is a scalar latent: write `{name}`"))
            }
            _ => checked.push(ContextItem {
                name: name.clone(),
                indexed,
                mixing: false,
            }),
        }
    }
    checked
}

/// Who calls the encoders: each conditional (by latent) and each reverse
/// model (by the latent giving its rows, empty if none), with the
/// encoders it calls.
pub struct Callers<'c> {
    pub conditionals: &'c [(String, BTreeSet<String>)],
    pub reverse: &'c [(String, BTreeSet<String>)],
    /// The learned distributions of the mixing variables
    /// (`mixing_family.rs`), by the latent of their length.
    pub mixing: &'c [(String, BTreeSet<String>)],
}

impl Callers<'_> {
    /// The latents whose lengths are encoder `field`'s rows, and whether a
    /// reverse model calls it; an encoder called by both a conditional and
    /// a reverse model, or one with a context called by a conditional, is
    /// reported.
    pub fn check(
        &self,
        cx: &Ctxt,
        field: &crate::guide::ast::GuideField,
        context: &[ContextItem],
    ) -> (Vec<String>, bool) {
        let name = field.ident.to_string();
        let calling = |list: &[(String, BTreeSet<String>)]| -> Vec<String> {
            list.iter()
                .filter(|(_, called)| called.contains(&name))
                .map(|(latent, _)| latent.clone())
                .collect()
        };
        let conditionals = calling(self.conditionals);
        let reverse = calling(self.reverse);
        let by_mixing = calling(self.mixing);
        let by_reverse = !reverse.is_empty();
        if !by_mixing.is_empty() && !check_mixing_caller(cx, field, context, by_reverse) {
            return (by_mixing, by_reverse);
        }
        if let (Some(c), true) = (conditionals.first(), by_reverse) {
            cx.error_spanned_by(
                &field.ident,
                format!("encoder `{name}` is called by conditional `{c}` and by a reverse model: give the reverse model an encoder of its own (the doubly-reparameterized estimator trains the reverse model's weights apart)"),
            );
        }
        // What is available where: a reverse model τ(ψ_j | latents) reads
        // latents, not ψ; a conditional's encoder runs before the latents
        // of its draw, and reads ψ_j.
        for item in context {
            let item_name = &item.name;
            match (item.mixing, by_reverse, conditionals.first()) {
                (true, true, _) => cx.error_spanned_by(
                    item_name,
                    format!("encoder `{name}` is called by a reverse model, τ({item_name}_j | latents), which cannot read `{item_name}`: its context reads the point's latents"),
                ),
                (false, _, Some(c)) => cx.error_spanned_by(
                    item_name,
                    format!("encoder `{name}` is called by conditional `{c}`, which cannot read latent `{item_name}` in it (the encoder runs before the draw's latents): its context reads the per-point mixing variable, `psi[j]`"),
                ),
                _ => {}
            }
        }
        let mut latents = conditionals;
        latents.extend(reverse.into_iter().filter(|r| !r.is_empty()));
        latents.extend(by_mixing.into_iter().filter(|r| !r.is_empty()));
        (latents, by_reverse)
    }
}

/// An encoder a mixing variable's distribution calls, `q(ψ_j | x_j)`,
/// reads the point's data alone (no context) and is not the reverse
/// model's; `false` (reported) otherwise.
fn check_mixing_caller(
    cx: &Ctxt,
    field: &crate::guide::ast::GuideField,
    context: &[ContextItem],
    by_reverse: bool,
) -> bool {
    let name = &field.ident;
    if by_reverse {
        cx.error_spanned_by(
            name,
            format!("encoder `{name}` is called by a mixing variable's distribution and by a reverse model: give the reverse model an encoder of its own (the doubly-reparameterized estimator trains the reverse model's weights apart)"),
        );
        return false;
    }
    if let Some(item) = context.first() {
        let item_name = &item.name;
        cx.error_spanned_by(
            item_name,
            format!("encoder `{name}` gives a mixing variable's distribution, q(ψ_j | x_j), which comes before the latents and the mixing variables and cannot read `{item_name}`: remove its `context`, or give that distribution an encoder of its own"),
        );
        return false;
    }
    true
}

/// The reverse model's parameter range over the parameters and the
/// encoders (`params[first..end]` of `reverse`, then the encoders a
/// reverse model calls, which come first among the encoders): one range,
/// so the reverse model's parameters must be the last parameters when it
/// calls an encoder.
pub fn reverse_params(
    cx: &Ctxt,
    params: &[super::lower::Param<'_>],
    reverse: Option<(usize, usize)>,
    encoders: &[Encoder<'_>],
) -> Option<(usize, usize)> {
    let count = encoders.iter().filter(|e| e.reverse).count();
    if count == 0 {
        return reverse;
    }
    let (first, end) = reverse.unwrap_or((params.len(), params.len()));
    if let Some(after) = params.get(end) {
        cx.error_spanned_by(
            after.ident,
            format!(
                "parameter `{}` comes after the reverse model's parameters, which its encoder `{}` follows: declare the reverse model's parameters last",
                after.ident,
                encoders[0].ident
            ),
        );
    }
    Some((first, params.len() + count))
}
