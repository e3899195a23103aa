//! Encoders in a guide struct (issue 16, design note §2):
//! `#[encoder(input = [y[j], sigma[j]], hidden = [16], activation = tanh, outputs = 2)] enc: Mlp`,
//! a network shared by the points `j` of a vector latent, from the data
//! of the point to the arguments of its conditional, called as
//! `enc(j)[o]` inside a conditional with `for j`.
//!
//! The call is rewritten before lowering: `enc(j)[o]` becomes
//! `__enc_enc_o[j]`, a vector local of the generated methods holding
//! output `o` of every point (the network is evaluated once per point
//! and draw, `Mlp::apply_rows`),
//! so that the rest of the expression is lowered as any other.

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
        let (mut items, mut hidden, mut activation, mut outputs) = (
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
            hidden: hidden.get().unwrap_or_default(),
            activation: activation
                .get()
                .unwrap_or_else(|| Ident::new("Tanh", Span::call_site())),
            outputs,
        })
    }
}

/// One input item: a data vector at the point, or a data matrix's row.
pub struct InputItem {
    pub data: Ident,
    pub matrix: bool,
}

/// A checked encoder.
pub struct Encoder<'a> {
    pub ident: &'a Ident,
    pub inputs: Vec<InputItem>,
    pub hidden: Vec<usize>,
    pub activation: Ident,
    pub outputs: usize,
    /// The latents whose conditionals call it (their lengths are its rows).
    pub latents: Vec<String>,
}

/// The name of output `o` of encoder `enc` in the generated code.
pub fn output_name(encoder: &Ident, o: usize) -> Ident {
    format_ident!("__enc_{}_{}", encoder, o)
}

/// Checks an encoder's inputs against the model's data: `name[j]` of a
/// data vector or `name.row(j)` of a data matrix.
pub fn inputs(
    cx: &Ctxt,
    data: &[DataInfo],
    others: &[(&Ident, &'static str)],
    items: &[Expr],
) -> Vec<InputItem> {
    let form = "an encoder's input is data of the point `j`: `y[j]` for a data vector, `x.row(j)` for a data matrix";
    let mut checked = Vec::new();
    for item in items {
        let (receiver, matrix) = match item {
            Expr::Index(ix) if index_ident(&ix.index).is_some() => (&*ix.expr, false),
            Expr::MethodCall(m)
                if m.method == "row" && m.args.len() == 1 && index_ident(&m.args[0]).is_some() =>
            {
                (&*m.receiver, true)
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
        match (info.shape, matrix) {
            (DataShape::Vec, false) if numeric => {}
            (DataShape::Matrix, true) => {}
            (DataShape::Matrix, false) => {
                cx.error_spanned_by(
                    item,
                    format!("`{name}` is a data matrix: give its row, `{name}.row(j)`"),
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
            matrix,
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
