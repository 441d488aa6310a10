//! The static catalog (`static/config/*.json`): pharmacies and products, loaded at start and
//! parsed with the same domain parsers as requests.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::domain::{DistrictId, PharmacyId, ProductId};

#[derive(Debug, Clone)]
pub struct Pharmacy {
    pub id: PharmacyId,
    pub name: String,
    pub district: DistrictId,
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct Product {
    pub id: ProductId,
    pub name: String,
    pub name_en: String,
    pub masks_per_pack: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub pharmacies: BTreeMap<String, Pharmacy>,
    pub products: BTreeMap<String, Product>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading {0}")]
    Io(String, #[source] std::io::Error),
    #[error("parsing {0}")]
    Json(String, #[source] serde_json::Error),
    #[error("{file}: entry {index}: {why}")]
    Entry {
        file: String,
        index: usize,
        why: String,
    },
}

#[derive(Deserialize)]
struct RawPharmacy {
    id: String,
    name: String,
    district: String,
    #[serde(default)]
    address: String,
}

#[derive(Deserialize)]
struct RawProduct {
    id: String,
    name: String,
    #[serde(default)]
    name_en: String,
    masks_per_pack: u32,
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CatalogError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CatalogError::Io(name.clone(), e))?;
    serde_json::from_slice(&bytes).map_err(|e| CatalogError::Json(name, e))
}

impl Catalog {
    /// Loads `config/pharmacies.json` and `config/products.json` under `static_dir`.
    ///
    /// # Errors
    /// When a file is missing or malformed, an id breaks the identifier grammar, or an id repeats.
    pub fn load(static_dir: &Path) -> Result<Self, CatalogError> {
        let ph_path = static_dir.join("config/pharmacies.json");
        let pr_path = static_dir.join("config/products.json");
        let raw_ph: Vec<RawPharmacy> = read(&ph_path)?;
        let raw_pr: Vec<RawProduct> = read(&pr_path)?;
        let mut cat = Catalog::default();
        for (index, p) in raw_ph.into_iter().enumerate() {
            let err = |why: String| CatalogError::Entry {
                file: ph_path.display().to_string(),
                index,
                why,
            };
            let id = PharmacyId::parse(&p.id).map_err(|e| err(e.to_string()))?;
            let district = DistrictId::parse(&p.district).map_err(|e| err(e.to_string()))?;
            let pharmacy = Pharmacy {
                id: id.clone(),
                name: p.name,
                district,
                address: p.address,
            };
            if cat.pharmacies.insert(id.to_string(), pharmacy).is_some() {
                return Err(err(format!("pharmacy {id} is listed twice")));
            }
        }
        for (index, p) in raw_pr.into_iter().enumerate() {
            let err = |why: String| CatalogError::Entry {
                file: pr_path.display().to_string(),
                index,
                why,
            };
            let id = ProductId::parse(&p.id).map_err(|e| err(e.to_string()))?;
            let product = Product {
                id: id.clone(),
                name: p.name,
                name_en: p.name_en,
                masks_per_pack: p.masks_per_pack,
            };
            if cat.products.insert(id.to_string(), product).is_some() {
                return Err(err(format!("product {id} is listed twice")));
            }
        }
        Ok(cat)
    }

    pub fn pharmacy(&self, id: &str) -> Option<&Pharmacy> {
        self.pharmacies.get(id)
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.get(id)
    }
}

impl maskdraw_wire::body::Known for Catalog {
    fn has_pharmacy(&self, id: &str) -> bool {
        self.pharmacy(id).is_some()
    }

    fn has_product(&self, id: &str) -> bool {
        self.product(id).is_some()
    }
}
