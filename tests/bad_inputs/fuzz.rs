//! Random byte edits of a saved fitted guide: each edited file either
//! fails to load with a typed error or loads to a guide that samples
//! without panicking (and with finite draws for a finite guide). The
//! built-in guides and a `#[variational(guide = …)]` struct guide (saved
//! as `SavedStructGuide`, its model's layout) are edited alike.

use iwhvi::guide::{HierarchicalGuide, MeanField, Preconditioned, SemiImplicit};
use iwhvi::model::{LatentSpec, Layout, Model};
use iwhvi::posterior::FittedGuide;
use iwhvi::rand::SeedableRng;
use iwhvi::rand::rngs::StdRng;
use iwhvi::transforms::Transform;
use iwhvi::variational;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn layout() -> Layout {
    Layout::new(vec![
        LatentSpec::scalar("mu", Transform::Identity),
        LatentSpec::scalar("sigma", Transform::Exp),
        LatentSpec::scalar(
            "p",
            Transform::Interval {
                low: 0.0,
                high: 1.0,
            },
        ),
    ])
}

fn saved<G: HierarchicalGuide + Serialize + DeserializeOwned>(guide: G) -> Vec<u8> {
    let params = guide.init_params(&mut StdRng::seed_from_u64(3));
    FittedGuide::new(guide, params, layout())
        .unwrap()
        .to_json()
        .unwrap()
        .into_bytes()
}

/// A model with a real, a positive and a vector latent whose length the
/// data give, for the struct guide below.
#[variational]
struct Hierarchy {
    #[data]
    k: usize,
    #[latent(Normal(0.0, 1.0))]
    mu: f64,
    #[latent(LogNormal(0.0, 1.0))]
    sigma: f64,
    #[latent(Normal(mu, sigma), len = k)]
    theta: Vec<f64>,
}

/// A struct guide with a mixing variable, a reverse model and a vector
/// latent (its parameter lengths follow the saved layout).
#[variational(guide = Hierarchy)]
struct HierarchyGuide {
    #[param(init = 0.0)]
    mu_loc: f64,
    #[param(init = 0.0)]
    sigma_loc: f64,
    #[param(init = 0.0, len = theta)]
    theta_loc: Vec<f64>,
    #[param(init = 0.0)]
    r: f64,
    #[mixing]
    #[reverse(Normal(0.5 * mu, r.exp()))]
    psi: f64,
    #[latent(Normal(mu_loc + psi, 0.5))]
    mu: f64,
    #[latent(LogNormal(sigma_loc, 0.3))]
    sigma: f64,
    #[latent(Normal(theta_loc[j] + 0.1 * psi, 0.5), for j)]
    theta: Vec<f64>,
}

/// A saved struct guide of `Hierarchy` with three `theta`s.
fn saved_struct_guide() -> Vec<u8> {
    let model = Hierarchy::new(3).unwrap();
    let guide = HierarchyGuide::new(&model).unwrap();
    let params = guide.init_params(&mut StdRng::seed_from_u64(3));
    FittedGuide::new(guide, params, model.layout())
        .unwrap()
        .to_json()
        .unwrap()
        .into_bytes()
}

/// The bytes an edit writes: digits, signs, the JSON punctuation and a
/// few letters, so that many edits stay JSON.
const ALPHABET: &[u8] = b"0123456789-+.eE,:[]{}\" nulltrue";

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(ALPHABET.to_vec()),
        ),
        1..4,
    )
}

/// Applies `(position, kind, byte)` edits: 0 replaces, 1 inserts, 2 deletes.
fn apply(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    for (index, kind, byte) in edits {
        let i = index.index(bytes.len());
        match kind {
            0 => bytes[i] = *byte,
            1 => bytes.insert(i, *byte),
            _ => {
                bytes.remove(i);
            }
        }
    }
    bytes
}

/// Loads the edited bytes; when they load, samples and checks the draws.
fn check<G: HierarchicalGuide + Serialize + DeserializeOwned>(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(loaded) = FittedGuide::<G>::from_json(text) {
        let draws = loaded.sample(5, &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(draws.len(), 5);
        // Loading went through the constructors: saving again and loading
        // gives the same guide.
        let again = FittedGuide::<G>::from_json(&loaded.to_json().unwrap()).unwrap();
        assert_eq!(again.params(), loaded.params());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn edited_semi_implicit_files_load_or_fail_cleanly(edits in edits()) {
        let bytes = apply(saved(SemiImplicit::new(3, 2)), &edits);
        check::<SemiImplicit>(&bytes);
    }

    #[test]
    fn edited_struct_guide_files_load_or_fail_cleanly(edits in edits()) {
        let bytes = apply(saved_struct_guide(), &edits);
        check::<HierarchyGuide>(&bytes);
    }

    #[test]
    fn edited_mean_field_files_load_or_fail_cleanly(edits in edits()) {
        let bytes = apply(saved(MeanField::new(3)), &edits);
        check::<MeanField>(&bytes);
    }

    #[test]
    fn edited_preconditioned_files_load_or_fail_cleanly(edits in edits()) {
        let guide = Preconditioned::new(
            SemiImplicit::new(3, 1),
            vec![0.5, -0.5, 0.0],
            vec![1.0, 0.0, 0.0, 0.2, 2.0, 0.0, 0.0, 0.1, 0.5],
        )
        .unwrap();
        let bytes = apply(saved(guide), &edits);
        check::<Preconditioned<SemiImplicit>>(&bytes);
    }
}

/// The unedited files load (so that the properties above test loading,
/// not only rejection), the struct guide's to the guide that was saved.
#[test]
fn unedited_files_load() {
    let text = String::from_utf8(saved_struct_guide()).unwrap();
    let loaded = FittedGuide::<HierarchyGuide>::from_json(&text).unwrap();
    assert_eq!(loaded.to_json().unwrap(), text);
    assert_eq!(
        loaded
            .sample(3, &mut StdRng::seed_from_u64(1))
            .unwrap()
            .len(),
        3
    );
    let text = String::from_utf8(saved(SemiImplicit::new(3, 2))).unwrap();
    assert!(FittedGuide::<SemiImplicit>::from_json(&text).is_ok());
}
