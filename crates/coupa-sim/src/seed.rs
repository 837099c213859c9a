//! Deterministic, realistic seed data.
//!
//! [`generate`] builds a whole instance from `config.seed` and the configured counts: users,
//! suppliers, invoices, Coupa Pay payments and a few unrelated integrations with their contacts.
//! The same seed and counts give the same [`Db`], value for value: randomness comes from a
//! SplitMix64 generator defined here (no dependency whose algorithm could change), and every date
//! hangs off a fixed epoch, [`EPOCH`] (2026-10-31 09:00 in the instance's offset), never the
//! clock. Documents spread over the ~15 months before the epoch.
//!
//! Shapes follow the R39 Swagger definitions and the payloads Coupa prints in its docs
//! (`invoice-show-full.xml`, the `coupa-pay-*` fragments): full nested objects, decimals as
//! [`Value::Decimal`], datetimes in the instance offset to the second.
//!
//! What the flows rely on, by construction (every 100 invoices, every 20 payments):
//! - Invoice statuses: 55 % `approved`, 8 % `voided`, the other 14 statuses of the enum 2 to 4
//!   each per 100 invoices, so every status is present in any 100 consecutive generated invoices.
//!   Work still in flight (drafts, approvals, holds) is mostly recent.
//! - Older approved and voided invoices are partly `exported` already (with `last-exported-at`,
//!   most also paid); a few unexported approved ones carry a partial payment.
//! - ERP rejections: suppliers whose number starts with [`UNKNOWN_SUPPLIER_PREFIX`] are new in
//!   Coupa and absent from [`erp_supplier_master`]; one supplier the ERP knows is inactive there
//!   (and `inactive` in Coupa); about 3 % of approved invoices are dated in a closed period,
//!   [`closed_periods`] (July 2025 and before, a month no other invoice uses).
//! - Ambiguity: the two "Acme Industrial" suppliers number their invoices from one shared
//!   sequence and have pairs of approved invoices with the same number (invoice numbers are
//!   unique per supplier only). Several suppliers share a name prefix (Acme, Global, Pacific).
//! - Coupa Pay: every status, most `completed_successfully`; about 15 % are employee (expense)
//!   payments; a supplier payment pays approved, unexported invoices of its payee (suppliers the
//!   ERP knows and accepts), and `pay-to-total` is the sum of its details' `payment-total`.
//!
//! Amount rules: line `total` = `quantity` × `price` rounded to the currency's decimals; header
//! `tax-amount` = Σ line `tax-amount` when `line-level-taxation`, else `tax-rate` % of the lines'
//! net; `gross-total` = `total-with-taxes` = `amount-due` = Σ line `total` + `shipping-amount` +
//! `handling-amount` + `misc-amount` + `tax-amount`. Coupa Pay: `payment-total` =
//! `transaction-total` − `discount-total` + `adjustment-total`; `pay-from-total` = `pay-to-total`
//! × `exchange-rate` (pay-from units per pay-to unit), rounded.

#![allow(
    clippy::inconsistent_digit_grouping,
    reason = "amounts in cents are written dollars_cents: 1_149_00 is $1,149.00"
)]

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, TimeZone, Timelike};
use coupa_doc::{Object, Value};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::config::SimConfig;
use crate::store::Db;

/// Supplier numbers with this prefix belong to suppliers created in Coupa that the ERP does not
/// know (`SUP-9xxxx`); the others (`SUP-1xxxx`) come from the ERP's supplier master.
pub const UNKNOWN_SUPPLIER_PREFIX: &str = "SUP-9";

/// The last closed accounting period: the ERP has closed it and every period before it.
pub const LAST_CLOSED_PERIOD: &str = "2025-07";

/// The fixed "now" of the seeded data, in the instance's offset: 2026-10-31 09:00.
pub const EPOCH: (i32, u32, u32, u32) = (2026, 10, 31, 9);

/// The custom fields defined on invoice headers; every seeded invoice carries all of them.
pub const INVOICE_CUSTOM_FIELDS: [&str; 4] = [
    "cf-erp-invoice-number",
    "cf-integration-status",
    "cf-cost-center-approver",
    "cf-project-code",
];

/// A supplier as the reference ERP's supplier master holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpSupplier {
    pub number: String,
    pub name: String,
    pub active: bool,
}

/// Whether a supplier number is one the ERP does not know (see [`UNKNOWN_SUPPLIER_PREFIX`]).
pub fn is_unknown_supplier_number(number: &str) -> bool {
    number.starts_with(UNKNOWN_SUPPLIER_PREFIX)
}

/// The suppliers an ERP would know, in Coupa id order: every supplier whose number is not an
/// unknown one; those `inactive` in Coupa (deactivated in the ERP, whose supplier master feeds
/// Coupa) are inactive.
pub fn erp_supplier_master(db: &Db) -> Vec<ErpSupplier> {
    db.suppliers
        .rows()
        .filter_map(|s| {
            let number = s.get("number").and_then(Value::as_str)?;
            if is_unknown_supplier_number(number) {
                return None;
            }
            Some(ErpSupplier {
                number: number.to_owned(),
                name: s
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                active: s.get("status").and_then(Value::as_str) != Some("inactive"),
            })
        })
        .collect()
}

/// The closed accounting periods (`YYYY-MM`, ascending): [`LAST_CLOSED_PERIOD`] and every
/// earlier month in which an invoice is dated. Seeded invoices dated in them are the ~3 % of
/// approved invoices an ERP must reject for the period; no other seeded invoice uses them.
pub fn closed_periods(db: &Db) -> Vec<String> {
    let last = (2025, 7);
    let mut months = BTreeSet::from([last]);
    for inv in db.invoices.rows() {
        if let Some(d) = inv.get("invoice-date").and_then(Value::as_datetime) {
            let m = (d.year(), d.month());
            if m <= last {
                months.insert(m);
            }
        }
    }
    months
        .into_iter()
        .map(|(y, m)| format!("{y:04}-{m:02}"))
        .collect()
}

/// Builds the instance's data from `config.seed`, `config.invoices` and `config.pay_payments`.
pub fn generate(config: &SimConfig) -> Db {
    let mut db = Db::default();
    let world = World::build(config, &mut db);
    let eligible = seed_invoices(&world, config, &mut db);
    seed_pay_payments(&world, config, &eligible, &mut db);
    seed_integrations(&world, config, &mut db);
    db.invoice_custom_fields = INVOICE_CUSTOM_FIELDS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    db
}

// ---------------------------------------------------------------------------------------------
// Randomness and time

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever, unlike a crate's RNG.
#[derive(Debug, Clone)]
struct Rng {
    state: u64,
}

const STREAM_SUPPLIERS: u64 = 2;
const STREAM_INVOICES: u64 = 3;
const STREAM_PAY: u64 = 4;
const STREAM_INTEGRATIONS: u64 = 5;

impl Rng {
    /// An independent stream per kind of data, so the number of invoices does not change the
    /// suppliers.
    fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng {
            state: seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        r.next_u64();
        r
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as i64
    }

    /// True `per_mille` times in 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn with the given weights (all zero: index 0).
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return 0;
        }
        let mut r = ((u128::from(self.next_u64()) * u128::from(total)) >> 64) as u64;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// `d` rounded to `dp` decimals (half away from zero) and written with exactly `dp` decimals.
fn money(d: Decimal, dp: u32) -> Decimal {
    let mut r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(dp);
    r
}

fn zero(dp: u32) -> Decimal {
    Decimal::new(0, dp)
}

/// Midnight of `d`'s day, in `d`'s offset (how Coupa writes invoice and payment dates).
fn midnight(d: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    d - TimeDelta::seconds(i64::from(d.num_seconds_from_midnight()))
}

// ---------------------------------------------------------------------------------------------
// Reference data

struct UserSeed {
    login: &'static str,
    first: &'static str,
    last: &'static str,
    employee_number: Option<&'static str>,
}

const fn user(
    login: &'static str,
    first: &'static str,
    last: &'static str,
    employee_number: Option<&'static str>,
) -> UserSeed {
    UserSeed {
        login,
        first,
        last,
        employee_number,
    }
}

/// Index 0 is the API user (`Db::api_user`); 1..=4 work in AP.
const USERS: [UserSeed; 12] = [
    user("api-integration", "API", "Integration", None),
    user("amanning", "Anna", "Manning", Some("E1002")),
    user("cjohnson", "Carl", "Johnson", Some("E1003")),
    user("ebaker", "Ellen", "Baker", Some("E1017")),
    user("lnguyen", "Linh", "Nguyen", Some("E1024")),
    user("dpatel", "Divya", "Patel", Some("E1031")),
    user("mwilson", "Marcus", "Wilson", Some("E1046")),
    user("sokafor", "Samuel", "Okafor", Some("E1052")),
    user("jmueller", "Julia", "Müller", Some("E1068")),
    user("rsantos", "Rafael", "Santos", Some("E1075")),
    user("tkowalczyk", "Tomasz", "Kowalczyk", Some("E1083")),
    user("hsato", "Hiro", "Sato", Some("E1091")),
];
const AP_USERS: [usize; 4] = [1, 2, 3, 4];

struct CurrencyDef {
    id: i64,
    code: &'static str,
    decimals: u32,
    /// US dollars per unit, 4 decimals.
    usd_rate: i64,
}
const USD: usize = 0;
const EUR: usize = 1;
const CURRENCIES: [CurrencyDef; 4] = [
    CurrencyDef {
        id: 1,
        code: "USD",
        decimals: 2,
        usd_rate: 10_000,
    },
    CurrencyDef {
        id: 2,
        code: "EUR",
        decimals: 2,
        usd_rate: 10_850,
    },
    CurrencyDef {
        id: 3,
        code: "GBP",
        decimals: 2,
        usd_rate: 12_700,
    },
    CurrencyDef {
        id: 8,
        code: "CAD",
        decimals: 2,
        usd_rate: 7_350,
    },
];

struct CountryDef {
    id: i64,
    code: &'static str,
    name: &'static str,
    phone: &'static str,
    currency: usize,
}
const US: usize = 0;
const DE: usize = 1;
const FR: usize = 2;
const NL: usize = 3;
const GB: usize = 4;
const CA: usize = 5;
const COUNTRIES: [CountryDef; 6] = [
    CountryDef {
        id: 223,
        code: "US",
        name: "United States",
        phone: "1",
        currency: 0,
    },
    CountryDef {
        id: 81,
        code: "DE",
        name: "Germany",
        phone: "49",
        currency: 1,
    },
    CountryDef {
        id: 73,
        code: "FR",
        name: "France",
        phone: "33",
        currency: 1,
    },
    CountryDef {
        id: 150,
        code: "NL",
        name: "Netherlands",
        phone: "31",
        currency: 1,
    },
    CountryDef {
        id: 222,
        code: "GB",
        name: "United Kingdom",
        phone: "44",
        currency: 2,
    },
    CountryDef {
        id: 38,
        code: "CA",
        name: "Canada",
        phone: "1",
        currency: 3,
    },
];

/// The buyer's legal entities, one per currency (index = currency index): chart of accounts
/// (`account-type`), bill-to address, segment-1 of accounts.
struct EntityDef {
    account_type_id: i64,
    account_type: &'static str,
    legal_name: &'static str,
    segment: &'static str,
    city_label: &'static str,
    street1: &'static str,
    city: &'static str,
    state: &'static str,
    postal: &'static str,
    country: usize,
    tax_code_id: i64,
    tax_code: &'static str,
}
const ENTITIES: [EntityDef; 4] = [
    EntityDef {
        account_type_id: 1,
        account_type: "Ace Corporate",
        legal_name: "Ace Corporate Inc.",
        segment: "US01",
        city_label: "San Francisco",
        street1: "100 Market Street, Suite 1200",
        city: "San Francisco",
        state: "CA",
        postal: "94105",
        country: US,
        tax_code_id: 1,
        tax_code: "US-SALES",
    },
    EntityDef {
        account_type_id: 2,
        account_type: "Ace Europe",
        legal_name: "Ace Europe GmbH",
        segment: "DE01",
        city_label: "Frankfurt",
        street1: "Mainzer Landstraße 50",
        city: "Frankfurt am Main",
        state: "HE",
        postal: "60325",
        country: DE,
        tax_code_id: 2,
        tax_code: "DE-VAT-19",
    },
    EntityDef {
        account_type_id: 3,
        account_type: "Ace UK",
        legal_name: "Ace UK Ltd",
        segment: "GB01",
        city_label: "London",
        street1: "1 Canada Square",
        city: "London",
        state: "",
        postal: "E14 5AB",
        country: GB,
        tax_code_id: 3,
        tax_code: "GB-VAT-20",
    },
    EntityDef {
        account_type_id: 4,
        account_type: "Ace Canada",
        legal_name: "Ace Canada Ltd.",
        segment: "CA01",
        city_label: "Toronto",
        street1: "200 Bay Street, Suite 3100",
        city: "Toronto",
        state: "ON",
        postal: "M5J 2J5",
        country: CA,
        tax_code_id: 4,
        tax_code: "CA-HST-13",
    },
];
const EXEMPT_TAX_CODE_ID: i64 = 9;

const DEPARTMENTS: [(&str, &str); 6] = [
    ("IT", "IT"),
    ("FIN", "Finance"),
    ("OPS", "Operations"),
    ("MKT", "Marketing"),
    ("HR", "Human Resources"),
    ("FAC", "Facilities"),
];
const D_IT: usize = 0;
const D_FIN: usize = 1;
const D_OPS: usize = 2;
const D_MKT: usize = 3;
const D_HR: usize = 4;
const D_FAC: usize = 5;

/// Natural accounts (segment-3).
const NATURALS: [(&str, &str); 14] = [
    ("6100", "Office Supplies"),
    ("6150", "Computer Equipment"),
    ("6160", "Software & Subscriptions"),
    ("6300", "Professional Fees"),
    ("6400", "Freight & Postage"),
    ("6500", "Facilities & Maintenance"),
    ("6600", "Marketing & Advertising"),
    ("6700", "Telecommunications"),
    ("6800", "Travel"),
    ("6900", "Insurance"),
    ("5100", "Materials & Supplies"),
    ("6550", "Equipment Rental"),
    ("6350", "Legal Fees"),
    ("6820", "Meals & Entertainment"),
];
const N_OFFICE: usize = 0;
const N_COMPUTER: usize = 1;
const N_SOFTWARE: usize = 2;
const N_PROF: usize = 3;
const N_FREIGHT: usize = 4;
const N_FACILITIES: usize = 5;
const N_MARKETING: usize = 6;
const N_TELECOM: usize = 7;
const N_TRAVEL: usize = 8;
const N_INSURANCE: usize = 9;
const N_MATERIALS: usize = 10;
const N_RENTAL: usize = 11;
const N_LEGAL: usize = 12;
const N_MEALS: usize = 13;

const UOMS: [(&str, &str); 11] = [
    ("EA", "Each"),
    ("HR", "Hour"),
    ("CS", "Case"),
    ("BX", "Box"),
    ("GAL", "Gallon"),
    ("DAY", "Day"),
    ("WK", "Week"),
    ("NT", "Night"),
    ("MIN", "Minute"),
    ("M", "Thousand"),
    ("KWH", "Kilowatt Hour"),
];

const PAYMENT_TERMS: [(&str, &str, i64); 5] = [
    ("Net 30", "Payment due 30 days after invoice date", 30),
    ("Net 45", "Payment due 45 days after invoice date", 45),
    ("Net 60", "Payment due 60 days after invoice date", 60),
    (
        "2/10 Net 30",
        "2% discount if paid within 10 days, net due in 30 days",
        30,
    ),
    ("Due on receipt", "Payment due on receipt", 0),
];
const TERM_DISCOUNT: usize = 3;

#[derive(Clone, Copy)]
enum Qty {
    /// An amount line: quantity 1.
    One,
    /// Whole units between the bounds.
    Whole(i64, i64),
    /// Hours in quarter steps between the bounds.
    Quarter(i64, i64),
}

struct Item {
    desc: &'static str,
    /// Empty for an amount line (`InvoiceAmountLine`, no unit of measure).
    uom: &'static str,
    natural: usize,
    /// Price bounds in units of 10^-`price_dp`.
    price: (i64, i64),
    price_dp: u32,
    qty: Qty,
}

const fn item(
    desc: &'static str,
    uom: &'static str,
    natural: usize,
    price: (i64, i64),
    qty: Qty,
) -> Item {
    Item {
        desc,
        uom,
        natural,
        price,
        price_dp: 2,
        qty,
    }
}

/// An item priced to 4 decimals (per-unit prices below a cent matter).
const fn item4(
    desc: &'static str,
    uom: &'static str,
    natural: usize,
    price: (i64, i64),
    qty: Qty,
) -> Item {
    Item {
        desc,
        uom,
        natural,
        price,
        price_dp: 4,
        qty,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cat {
    It,
    Office,
    Logistics,
    Facilities,
    Professional,
    Marketing,
    Telecom,
    Industrial,
    Travel,
    Medical,
    Catering,
    Security,
    Insurance,
    Print,
    DataCenter,
}

const IT_ITEMS: &[Item] = &[
    item(
        "Laptop, 14in business class, 32GB RAM, 1TB SSD",
        "EA",
        N_COMPUTER,
        (1_149_00, 2_399_00),
        Qty::Whole(1, 12),
    ),
    item(
        "Monitor, 27in USB-C QHD",
        "EA",
        N_COMPUTER,
        (229_00, 489_00),
        Qty::Whole(1, 20),
    ),
    item(
        "Docking station, USB-C, dual display",
        "EA",
        N_COMPUTER,
        (149_00, 289_00),
        Qty::Whole(1, 20),
    ),
    item(
        "Collaboration suite subscription, per seat, annual",
        "EA",
        N_SOFTWARE,
        (96_00, 300_00),
        Qty::Whole(5, 250),
    ),
    item(
        "Cloud hosting - monthly usage",
        "",
        N_SOFTWARE,
        (850_00, 24_500_00),
        Qty::One,
    ),
    item(
        "IT support services",
        "HR",
        N_PROF,
        (95_00, 175_00),
        Qty::Quarter(2, 60),
    ),
];
const OFFICE_ITEMS: &[Item] = &[
    item(
        "Copy paper, letter, 10-ream case",
        "CS",
        N_OFFICE,
        (42_99, 61_50),
        Qty::Whole(2, 40),
    ),
    item(
        "Toner cartridge, black, high yield",
        "EA",
        N_OFFICE,
        (89_00, 219_00),
        Qty::Whole(1, 24),
    ),
    item(
        "Ergonomic task chair",
        "EA",
        N_OFFICE,
        (289_00, 749_00),
        Qty::Whole(1, 15),
    ),
    item(
        "Sit-stand desk frame, dual motor",
        "EA",
        N_OFFICE,
        (399_00, 899_00),
        Qty::Whole(1, 10),
    ),
    item(
        "Break room coffee and supplies",
        "",
        N_OFFICE,
        (120_00, 1_450_00),
        Qty::One,
    ),
    item(
        "Ballpoint pens, blue, box of 12",
        "BX",
        N_OFFICE,
        (3_99, 7_49),
        Qty::Whole(2, 60),
    ),
];
const LOGISTICS_ITEMS: &[Item] = &[
    item(
        "Freight - LTL shipment",
        "",
        N_FREIGHT,
        (185_00, 3_900_00),
        Qty::One,
    ),
    item(
        "Courier - same day delivery",
        "EA",
        N_FREIGHT,
        (28_50, 145_00),
        Qty::Whole(1, 40),
    ),
    item(
        "Pallet storage, per pallet per month",
        "EA",
        N_FREIGHT,
        (14_00, 32_00),
        Qty::Whole(10, 400),
    ),
    item("Fuel surcharge", "", N_FREIGHT, (12_00, 480_00), Qty::One),
    item4(
        "Diesel fuel, per gallon",
        "GAL",
        N_FREIGHT,
        (3_1990, 4_2990),
        Qty::Whole(50, 1200),
    ),
];
const FACILITIES_ITEMS: &[Item] = &[
    item(
        "Janitorial services - monthly",
        "",
        N_FACILITIES,
        (2_400_00, 14_800_00),
        Qty::One,
    ),
    item(
        "HVAC preventive maintenance",
        "HR",
        N_FACILITIES,
        (110_00, 165_00),
        Qty::Quarter(2, 24),
    ),
    item(
        "Landscaping services - monthly",
        "",
        N_FACILITIES,
        (650_00, 3_200_00),
        Qty::One,
    ),
    item(
        "Bottled water delivery, 5 gal",
        "EA",
        N_FACILITIES,
        (7_25, 12_50),
        Qty::Whole(10, 120),
    ),
    item(
        "Electrical repair - labor",
        "HR",
        N_FACILITIES,
        (95_00, 145_00),
        Qty::Quarter(1, 40),
    ),
    item(
        "LED panel light fixture, 2x4",
        "EA",
        N_FACILITIES,
        (79_00, 189_00),
        Qty::Whole(2, 60),
    ),
];
const PROFESSIONAL_ITEMS: &[Item] = &[
    item(
        "Consulting services - senior consultant",
        "HR",
        N_PROF,
        (175_00, 295_00),
        Qty::Quarter(4, 160),
    ),
    item(
        "Project management services",
        "HR",
        N_PROF,
        (140_00, 210_00),
        Qty::Quarter(4, 120),
    ),
    item(
        "Contract staffing - weekly timesheet",
        "HR",
        N_PROF,
        (48_00, 96_00),
        Qty::Quarter(8, 50),
    ),
    item(
        "Legal services - contract review",
        "HR",
        N_LEGAL,
        (250_00, 650_00),
        Qty::Quarter(1, 40),
    ),
    item(
        "Retainer fee - monthly",
        "",
        N_PROF,
        (2_500_00, 15_000_00),
        Qty::One,
    ),
];
const MARKETING_ITEMS: &[Item] = &[
    item(
        "Trade show booth design and build",
        "",
        N_MARKETING,
        (4_500_00, 28_000_00),
        Qty::One,
    ),
    item4(
        "Printed brochures, tri-fold, full color",
        "EA",
        N_MARKETING,
        (1850, 4200),
        Qty::Whole(500, 20_000),
    ),
    item(
        "Digital advertising campaign - monthly",
        "",
        N_MARKETING,
        (1_000_00, 18_000_00),
        Qty::One,
    ),
    item(
        "Creative services",
        "HR",
        N_MARKETING,
        (95_00, 185_00),
        Qty::Quarter(2, 80),
    ),
];
const TELECOM_ITEMS: &[Item] = &[
    item(
        "Mobile service plan - monthly, per line",
        "EA",
        N_TELECOM,
        (35_00, 85_00),
        Qty::Whole(5, 180),
    ),
    item(
        "Internet circuit 1 Gbps - monthly",
        "",
        N_TELECOM,
        (850_00, 2_400_00),
        Qty::One,
    ),
    item(
        "Conference calling usage",
        "",
        N_TELECOM,
        (45_00, 1_200_00),
        Qty::One,
    ),
    item4(
        "International long distance, per minute",
        "MIN",
        N_TELECOM,
        (350, 1850),
        Qty::Whole(100, 20_000),
    ),
];
const INDUSTRIAL_ITEMS: &[Item] = &[
    item(
        "Nitrile work gloves, box of 100",
        "BX",
        N_MATERIALS,
        (12_50, 24_90),
        Qty::Whole(5, 200),
    ),
    item(
        "Hard hat, type II, class E",
        "EA",
        N_MATERIALS,
        (24_00, 59_00),
        Qty::Whole(5, 100),
    ),
    item(
        "Hex bolts, M8 x 40mm, box of 250",
        "BX",
        N_MATERIALS,
        (31_20, 58_75),
        Qty::Whole(2, 80),
    ),
    item(
        "Hydraulic hose assembly",
        "EA",
        N_MATERIALS,
        (64_00, 310_00),
        Qty::Whole(1, 30),
    ),
    item(
        "Stretch wrap film, 18in x 1500ft",
        "CS",
        N_MATERIALS,
        (58_00, 96_00),
        Qty::Whole(2, 60),
    ),
    item(
        "Excavator rental, 20 ton",
        "DAY",
        N_RENTAL,
        (650_00, 1_250_00),
        Qty::Whole(1, 20),
    ),
    item(
        "Forklift rental",
        "WK",
        N_RENTAL,
        (450_00, 900_00),
        Qty::Whole(1, 8),
    ),
];
const TRAVEL_ITEMS: &[Item] = &[
    item(
        "Airfare - economy",
        "",
        N_TRAVEL,
        (180_00, 1_450_00),
        Qty::One,
    ),
    item(
        "Hotel accommodation",
        "NT",
        N_TRAVEL,
        (129_00, 389_00),
        Qty::Whole(1, 6),
    ),
    item(
        "Car rental",
        "DAY",
        N_TRAVEL,
        (45_00, 110_00),
        Qty::Whole(1, 7),
    ),
    item(
        "Travel agency service fee",
        "EA",
        N_TRAVEL,
        (15_00, 45_00),
        Qty::Whole(1, 30),
    ),
];
const MEDICAL_ITEMS: &[Item] = &[
    item(
        "First aid kit refill, 50 person",
        "EA",
        N_MATERIALS,
        (39_00, 89_00),
        Qty::Whole(1, 20),
    ),
    item(
        "Nitrile exam gloves, box of 100",
        "BX",
        N_MATERIALS,
        (9_50, 16_75),
        Qty::Whole(10, 200),
    ),
    item(
        "AED pads, adult",
        "EA",
        N_MATERIALS,
        (45_00, 95_00),
        Qty::Whole(1, 10),
    ),
];
const CATERING_ITEMS: &[Item] = &[
    item(
        "Catering - team lunch, per person",
        "EA",
        N_MEALS,
        (14_50, 32_00),
        Qty::Whole(10, 150),
    ),
    item(
        "Catering - executive breakfast, per person",
        "EA",
        N_MEALS,
        (18_00, 38_00),
        Qty::Whole(6, 40),
    ),
    item(
        "Event catering - service charge",
        "",
        N_MEALS,
        (150_00, 1_800_00),
        Qty::One,
    ),
];
const SECURITY_ITEMS: &[Item] = &[
    item(
        "Security guard services",
        "HR",
        N_FACILITIES,
        (28_00, 52_00),
        Qty::Quarter(40, 720),
    ),
    item(
        "Access control badges",
        "EA",
        N_FACILITIES,
        (3_25, 7_80),
        Qty::Whole(50, 1000),
    ),
    item(
        "Alarm monitoring - monthly",
        "",
        N_FACILITIES,
        (120_00, 650_00),
        Qty::One,
    ),
];
const INSURANCE_ITEMS: &[Item] = &[
    item(
        "General liability premium - quarterly installment",
        "",
        N_INSURANCE,
        (4_200_00, 36_000_00),
        Qty::One,
    ),
    item(
        "Commercial auto policy - monthly",
        "",
        N_INSURANCE,
        (900_00, 6_500_00),
        Qty::One,
    ),
    item(
        "Broker service fee",
        "",
        N_INSURANCE,
        (250_00, 1_500_00),
        Qty::One,
    ),
];
const PRINT_ITEMS: &[Item] = &[
    item(
        "Direct mail postage",
        "",
        N_FREIGHT,
        (300_00, 9_800_00),
        Qty::One,
    ),
    item(
        "Envelopes, #10, printed, per thousand",
        "M",
        N_MARKETING,
        (38_00, 95_00),
        Qty::Whole(1, 50),
    ),
    item(
        "Business cards, box of 500",
        "BX",
        N_OFFICE,
        (19_00, 49_00),
        Qty::Whole(1, 25),
    ),
];
const DATACENTER_ITEMS: &[Item] = &[
    item(
        "Colocation rack, 42U - monthly",
        "EA",
        N_SOFTWARE,
        (1_200_00, 2_900_00),
        Qty::Whole(1, 12),
    ),
    item(
        "Cross connect - monthly",
        "EA",
        N_TELECOM,
        (150_00, 350_00),
        Qty::Whole(1, 10),
    ),
    item(
        "Remote hands",
        "HR",
        N_PROF,
        (120_00, 220_00),
        Qty::Quarter(1, 10),
    ),
    item4(
        "Power, metered, per kWh",
        "KWH",
        N_FACILITIES,
        (1180, 2150),
        Qty::Whole(2000, 60_000),
    ),
];

impl Cat {
    fn items(self) -> &'static [Item] {
        match self {
            Cat::It => IT_ITEMS,
            Cat::Office => OFFICE_ITEMS,
            Cat::Logistics => LOGISTICS_ITEMS,
            Cat::Facilities => FACILITIES_ITEMS,
            Cat::Professional => PROFESSIONAL_ITEMS,
            Cat::Marketing => MARKETING_ITEMS,
            Cat::Telecom => TELECOM_ITEMS,
            Cat::Industrial => INDUSTRIAL_ITEMS,
            Cat::Travel => TRAVEL_ITEMS,
            Cat::Medical => MEDICAL_ITEMS,
            Cat::Catering => CATERING_ITEMS,
            Cat::Security => SECURITY_ITEMS,
            Cat::Insurance => INSURANCE_ITEMS,
            Cat::Print => PRINT_ITEMS,
            Cat::DataCenter => DATACENTER_ITEMS,
        }
    }

    /// The department that usually books this spend.
    fn department(self) -> usize {
        match self {
            Cat::It | Cat::Telecom | Cat::DataCenter => D_IT,
            Cat::Office | Cat::Professional | Cat::Insurance => D_FIN,
            Cat::Logistics | Cat::Industrial => D_OPS,
            Cat::Marketing | Cat::Print => D_MKT,
            Cat::Travel | Cat::Medical | Cat::Catering => D_HR,
            Cat::Facilities | Cat::Security => D_FAC,
        }
    }

    /// Goods: shipped (shipping charges), usually on a PO, taxed in the US.
    fn goods(self) -> bool {
        matches!(
            self,
            Cat::It | Cat::Office | Cat::Industrial | Cat::Medical | Cat::Print
        )
    }
}

struct SupplierSeed {
    name: &'static str,
    display: &'static str,
    country: usize,
    cat: Cat,
    street1: &'static str,
    city: &'static str,
    state: &'static str,
    postal: &'static str,
    contact: (&'static str, &'static str),
    domain: &'static str,
    area: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn sup(
    name: &'static str,
    display: &'static str,
    country: usize,
    cat: Cat,
    street1: &'static str,
    city: &'static str,
    state: &'static str,
    postal: &'static str,
    contact: (&'static str, &'static str),
    domain: &'static str,
    area: &'static str,
) -> SupplierSeed {
    SupplierSeed {
        name,
        display,
        country,
        cat,
        street1,
        city,
        state,
        postal,
        contact,
        domain,
        area,
    }
}

/// Indices 0 and 1 are the "twins" that share an invoice number sequence.
const SUPPLIERS: [SupplierSeed; 40] = [
    sup(
        "Acme Industrial Supply Co.",
        "Acme Industrial Supply",
        US,
        Cat::Industrial,
        "4410 Commerce Way",
        "Fremont",
        "CA",
        "94538",
        ("Robert", "Alvarez"),
        "acmeindustrial.example.com",
        "510",
    ),
    sup(
        "Acme Industrial Services LLC",
        "Acme Industrial Services",
        US,
        Cat::Facilities,
        "1200 Harbor Blvd",
        "Oakland",
        "CA",
        "94607",
        ("Linda", "Chen"),
        "acme-services.example.com",
        "510",
    ),
    sup(
        "Acme Office Products",
        "Acme Office",
        US,
        Cat::Office,
        "88 Spear Street",
        "San Francisco",
        "CA",
        "94105",
        ("Mark", "Feldman"),
        "acmeoffice.example.com",
        "415",
    ),
    sup(
        "Global Tech Solutions Inc.",
        "Global Tech Solutions",
        US,
        Cat::It,
        "2100 Lakeside Blvd",
        "Richardson",
        "TX",
        "75082",
        ("Priya", "Natarajan"),
        "globaltech.example.com",
        "972",
    ),
    sup(
        "Global Freight Partners",
        "Global Freight",
        US,
        Cat::Logistics,
        "5600 Airport Rd",
        "Memphis",
        "TN",
        "38118",
        ("James", "Whitaker"),
        "globalfreight.example.com",
        "901",
    ),
    sup(
        "Global Facilities Services",
        "Global Facilities",
        US,
        Cat::Facilities,
        "300 Park Ave S",
        "New York",
        "NY",
        "10010",
        ("Maria", "Gonzalez"),
        "globalfacilities.example.com",
        "212",
    ),
    sup(
        "Pacific Coast Packaging",
        "Pacific Coast Packaging",
        US,
        Cat::Industrial,
        "1750 Marine Dr",
        "Long Beach",
        "CA",
        "90813",
        ("Kevin", "Osei"),
        "pacificcoastpkg.example.com",
        "562",
    ),
    sup(
        "Pacific Office Interiors",
        "Pacific Office Interiors",
        US,
        Cat::Office,
        "420 SW Washington St",
        "Portland",
        "OR",
        "97204",
        ("Sarah", "Lindqvist"),
        "pacificinteriors.example.com",
        "503",
    ),
    sup(
        "Northwind Traders",
        "Northwind",
        US,
        Cat::Office,
        "1520 Pike Pl",
        "Seattle",
        "WA",
        "98101",
        ("Nancy", "Davolio"),
        "northwind.example.com",
        "206",
    ),
    sup(
        "Summit Consulting Group",
        "Summit Consulting",
        US,
        Cat::Professional,
        "1700 Lincoln St",
        "Denver",
        "CO",
        "80203",
        ("Daniel", "Brooks"),
        "summitcg.example.com",
        "303",
    ),
    sup(
        "Blue Ridge Electrical Contractors",
        "Blue Ridge Electrical",
        US,
        Cat::Facilities,
        "915 S Tryon St",
        "Charlotte",
        "NC",
        "28202",
        ("Tom", "Haskins"),
        "blueridge-electric.example.com",
        "704",
    ),
    sup(
        "Cascade Water Services",
        "Cascade Water",
        US,
        Cat::Facilities,
        "2200 1st Ave S",
        "Seattle",
        "WA",
        "98134",
        ("Emily", "Tran"),
        "cascadewater.example.com",
        "206",
    ),
    sup(
        "Redwood Software Inc.",
        "Redwood Software",
        US,
        Cat::It,
        "505 Howard St",
        "San Francisco",
        "CA",
        "94105",
        ("Alex", "Kim"),
        "redwoodsw.example.com",
        "415",
    ),
    sup(
        "Granite Construction Supply",
        "Granite Supply",
        US,
        Cat::Industrial,
        "3300 S Main St",
        "Salt Lake City",
        "UT",
        "84115",
        ("Brian", "Kowalski"),
        "granitesupply.example.com",
        "801",
    ),
    sup(
        "Evergreen Janitorial Services",
        "Evergreen Janitorial",
        US,
        Cat::Facilities,
        "780 N Alameda St",
        "Los Angeles",
        "CA",
        "90012",
        ("Rosa", "Martinez"),
        "evergreenjanitorial.example.com",
        "213",
    ),
    sup(
        "Lakeside Catering Co.",
        "Lakeside Catering",
        US,
        Cat::Catering,
        "233 E Wacker Dr",
        "Chicago",
        "IL",
        "60601",
        ("Hannah", "Novak"),
        "lakesidecatering.example.com",
        "312",
    ),
    sup(
        "Metro Courier Services",
        "Metro Courier",
        US,
        Cat::Logistics,
        "150 W 34th St",
        "New York",
        "NY",
        "10001",
        ("Luis", "Ramirez"),
        "metrocourier.example.com",
        "212",
    ),
    sup(
        "Pinnacle IT Staffing",
        "Pinnacle Staffing",
        US,
        Cat::Professional,
        "1100 Peachtree St NE",
        "Atlanta",
        "GA",
        "30309",
        ("Keisha", "Johnson"),
        "pinnaclestaffing.example.com",
        "404",
    ),
    sup(
        "Sterling & Hale LLP",
        "Sterling & Hale",
        US,
        Cat::Professional,
        "100 Federal St",
        "Boston",
        "MA",
        "02110",
        ("Edward", "Sterling"),
        "sterlinghale.example.com",
        "617",
    ),
    sup(
        "Horizon Telecom",
        "Horizon Telecom",
        US,
        Cat::Telecom,
        "6000 Connection Dr",
        "Irving",
        "TX",
        "75039",
        ("Michael", "Reyes"),
        "horizontel.example.com",
        "972",
    ),
    sup(
        "Apex Security Systems",
        "Apex Security",
        US,
        Cat::Security,
        "2500 N Central Ave",
        "Phoenix",
        "AZ",
        "85004",
        ("Derek", "Holt"),
        "apexsecurity.example.com",
        "602",
    ),
    sup(
        "Ironclad Safety Equipment",
        "Ironclad Safety",
        US,
        Cat::Industrial,
        "4800 W 150th St",
        "Cleveland",
        "OH",
        "44135",
        ("Patricia", "Walsh"),
        "ironcladsafety.example.com",
        "216",
    ),
    sup(
        "Brightline Marketing",
        "Brightline",
        US,
        Cat::Marketing,
        "1200 Congress Ave",
        "Austin",
        "TX",
        "78701",
        ("Olivia", "Park"),
        "brightline.example.com",
        "512",
    ),
    sup(
        "Keystone Insurance Brokers",
        "Keystone Insurance",
        US,
        Cat::Insurance,
        "1600 Market St",
        "Philadelphia",
        "PA",
        "19103",
        ("George", "Miller"),
        "keystoneins.example.com",
        "215",
    ),
    sup(
        "Riverbend Print & Mail",
        "Riverbend Print",
        US,
        Cat::Print,
        "400 N 5th St",
        "Minneapolis",
        "MN",
        "55401",
        ("Jennifer", "Olson"),
        "riverbendprint.example.com",
        "612",
    ),
    sup(
        "Silverline Travel Management",
        "Silverline Travel",
        US,
        Cat::Travel,
        "801 Brickell Ave",
        "Miami",
        "FL",
        "33131",
        ("Carlos", "Mendez"),
        "silverlinetravel.example.com",
        "305",
    ),
    sup(
        "Orion Data Centers",
        "Orion Data Centers",
        US,
        Cat::DataCenter,
        "21830 Uunet Dr",
        "Ashburn",
        "VA",
        "20147",
        ("Aaron", "Fischer"),
        "oriondc.example.com",
        "703",
    ),
    sup(
        "Atlas Equipment Rental",
        "Atlas Rental",
        US,
        Cat::Industrial,
        "7700 Northwest Hwy",
        "Dallas",
        "TX",
        "75225",
        ("Scott", "Jensen"),
        "atlasrental.example.com",
        "214",
    ),
    sup(
        "Beacon Medical Supplies",
        "Beacon Medical",
        US,
        Cat::Medical,
        "250 W Main St",
        "Louisville",
        "KY",
        "40202",
        ("Megan", "Foster"),
        "beaconmedical.example.com",
        "502",
    ),
    sup(
        "Crestview Landscaping",
        "Crestview Landscaping",
        US,
        Cat::Facilities,
        "1450 The Alameda",
        "San Jose",
        "CA",
        "95126",
        ("Miguel", "Torres"),
        "crestviewland.example.com",
        "408",
    ),
    sup(
        "Nordlicht Logistik GmbH",
        "Nordlicht Logistik",
        DE,
        Cat::Logistics,
        "Hafenstraße 12",
        "Hamburg",
        "HH",
        "20457",
        ("Jonas", "Becker"),
        "nordlicht-logistik.example.com",
        "40",
    ),
    sup(
        "Rheinwerk Industrietechnik GmbH",
        "Rheinwerk",
        DE,
        Cat::Industrial,
        "Industriestraße 45",
        "Köln",
        "NW",
        "50735",
        ("Katrin", "Schmidt"),
        "rheinwerk.example.com",
        "221",
    ),
    sup(
        "Atelier Lumière SAS",
        "Atelier Lumière",
        FR,
        Cat::Marketing,
        "24 Rue de la Paix",
        "Paris",
        "",
        "75002",
        ("Camille", "Laurent"),
        "atelier-lumiere.example.com",
        "1",
    ),
    sup(
        "Van der Berg Transport B.V.",
        "Van der Berg Transport",
        NL,
        Cat::Logistics,
        "Havenweg 8",
        "Rotterdam",
        "ZH",
        "3089 JH",
        ("Pieter", "van der Berg"),
        "vdberg-transport.example.com",
        "10",
    ),
    sup(
        "Thames Valley Office Supplies Ltd",
        "Thames Valley Office",
        GB,
        Cat::Office,
        "Unit 4, Kennet Park",
        "Reading",
        "Berkshire",
        "RG2 0QX",
        ("Oliver", "Hughes"),
        "tvos.example.co.uk",
        "118",
    ),
    sup(
        "Pennine Engineering Ltd",
        "Pennine Engineering",
        GB,
        Cat::Industrial,
        "Mill Lane",
        "Leeds",
        "West Yorkshire",
        "LS12 4HQ",
        ("Sophie", "Taylor"),
        "pennine-eng.example.co.uk",
        "113",
    ),
    sup(
        "Kingsbridge Consulting Ltd",
        "Kingsbridge Consulting",
        GB,
        Cat::Professional,
        "30 Fenchurch St",
        "London",
        "",
        "EC3M 3BD",
        ("William", "Clarke"),
        "kingsbridge.example.co.uk",
        "20",
    ),
    sup(
        "Maple Leaf Industrial Ltd.",
        "Maple Leaf Industrial",
        CA,
        Cat::Industrial,
        "2150 Steeles Ave W",
        "Toronto",
        "ON",
        "M3J 2R5",
        ("Ryan", "MacDonald"),
        "mapleleafind.example.ca",
        "416",
    ),
    sup(
        "Great Lakes Fasteners Inc.",
        "Great Lakes Fasteners",
        CA,
        Cat::Industrial,
        "85 Industrial Pkwy",
        "Hamilton",
        "ON",
        "L8E 2X2",
        ("Amanda", "Singh"),
        "glfasteners.example.ca",
        "905",
    ),
    sup(
        "Laurentian Paper Co.",
        "Laurentian Paper",
        CA,
        Cat::Office,
        "1200 Rue Sherbrooke O",
        "Montréal",
        "QC",
        "H3A 1H6",
        ("Isabelle", "Gagnon"),
        "laurentianpaper.example.ca",
        "514",
    ),
];
const TWIN_A: usize = 0;
const TWIN_B: usize = 1;
const UNKNOWN_SUPPLIERS: usize = 2;

/// How a supplier numbers its invoices.
#[derive(Debug, Clone)]
enum Numbering {
    /// `100223`
    Plain,
    /// `INV-004512`
    Inv,
    /// `<prefix><year>-<n:05>`, e.g. `RE-2026-00042`
    Yearly(&'static str),
    /// `<initials>-<n>`, e.g. `GTS-48213`
    Initials(String),
}

impl Numbering {
    fn format(&self, n: u64, year: i32) -> String {
        match self {
            Numbering::Plain => n.to_string(),
            Numbering::Inv => format!("INV-{n:06}"),
            Numbering::Yearly(prefix) => format!("{prefix}{year}-{n:05}"),
            Numbering::Initials(initials) => format!("{initials}-{n}"),
        }
    }
}

/// How Coupa Pay pays a supplier: the company account it pays from (index into `PAY_FROM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rail {
    VirtualCard = 0,
    Ach = 1,
    Wire = 2,
    Sepa = 3,
    Check = 4,
}

struct PayFromDef {
    id: i64,
    name: &'static str,
    kind: &'static str,
    partner_id: i64,
    partner: &'static str,
    issuing_bank: &'static str,
    partner_type: &'static str,
    partner_kind: &'static str,
    currency: usize,
    entity: usize,
    expenses: bool,
    transfer: &'static str,
}
const PAY_FROM: [PayFromDef; 5] = [
    PayFromDef {
        id: 654,
        name: "Conferma - WEX Virtual Card",
        kind: "virtual_card",
        partner_id: 14,
        partner: "Conferma - WEX",
        issuing_bank: "WEX",
        partner_type: "CoupaPay::VirtualCardPartner",
        partner_kind: "conferma",
        currency: USD,
        entity: 0,
        expenses: false,
        transfer: "virtual_card",
    },
    PayFromDef {
        id: 655,
        name: "JPMorgan Chase Operating - ACH",
        kind: "bank_account",
        partner_id: 15,
        partner: "JPMorgan Chase Payments",
        issuing_bank: "JPMorgan Chase",
        partner_type: "CoupaPay::BankPartner",
        partner_kind: "jpmc",
        currency: USD,
        entity: 0,
        expenses: true,
        transfer: "ach",
    },
    PayFromDef {
        id: 656,
        name: "Citibank Global Payments - USD",
        kind: "bank_account",
        partner_id: 16,
        partner: "Citi WorldLink",
        issuing_bank: "Citibank",
        partner_type: "CoupaPay::BankPartner",
        partner_kind: "citi",
        currency: USD,
        entity: 0,
        expenses: false,
        transfer: "wire",
    },
    PayFromDef {
        id: 657,
        name: "Citibank Europe - EUR Operating",
        kind: "bank_account",
        partner_id: 16,
        partner: "Citi WorldLink",
        issuing_bank: "Citibank",
        partner_type: "CoupaPay::BankPartner",
        partner_kind: "citi",
        currency: EUR,
        entity: 1,
        expenses: false,
        transfer: "sepa",
    },
    PayFromDef {
        id: 658,
        name: "Bank of America - Digital Check",
        kind: "digital_check",
        partner_id: 17,
        partner: "Bank of America Digital Check",
        issuing_bank: "Bank of America",
        partner_type: "CoupaPay::DigitalCheckPartner",
        partner_kind: "bofa",
        currency: USD,
        entity: 0,
        expenses: false,
        transfer: "digital_check",
    },
];
const EMPLOYEE_PAY_FROM: usize = Rail::Ach as usize;

struct IntegrationDef {
    code: &'static str,
    name: &'static str,
    business_object: &'static str,
    direction: &'static str,
    end_system: &'static str,
    end_system_type: &'static str,
    integration_type: &'static str,
    alert_type: &'static str,
    contact_user: usize,
}
const INTEGRATIONS: [IntegrationDef; 3] = [
    IntegrationDef {
        code: "SUPPLIERS-FROM-ERP",
        name: "Supplier master from ERP",
        business_object: "Supplier",
        direction: "to_coupa",
        end_system: "Corporate ERP",
        end_system_type: "erp",
        integration_type: "flat_file",
        alert_type: "Both",
        contact_user: 10,
    },
    IntegrationDef {
        code: "USERS-FROM-HR",
        name: "Users from HR (Workday)",
        business_object: "User",
        direction: "to_coupa",
        end_system: "Workday",
        end_system_type: "hr",
        integration_type: "api",
        alert_type: "Technical",
        contact_user: 10,
    },
    IntegrationDef {
        code: "EXPENSES-TO-PAYROLL",
        name: "Expense reports to payroll",
        business_object: "ExpenseReport",
        direction: "from_coupa",
        end_system: "ADP Workforce Now",
        end_system_type: "payroll",
        integration_type: "flat_file",
        alert_type: "Functional",
        contact_user: 5,
    },
];

// ---------------------------------------------------------------------------------------------
// The world: users, suppliers and the prebuilt objects documents embed

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Known,
    /// Created in Coupa, unknown to the ERP.
    Unknown,
    /// Known to the ERP but inactive there (and in Coupa).
    Inactive,
}

struct Supplier {
    seed: &'static SupplierSeed,
    role: Role,
    currency: usize,
    entity: usize,
    term: usize,
    tax_rate: Decimal,
    line_level: bool,
    numbering: Numbering,
    first_number: u64,
    rail: Rail,
    weight: u64,
    /// As an invoice embeds it (`invoice-show-full.xml`).
    embed: Value,
    /// As a Coupa Pay payment embeds it (`payee`, `pay-to-account.supplier`).
    payee: Value,
    remit_to: Value,
    tax_code: Value,
    pay_to_account: Value,
}

struct World {
    epoch: DateTime<FixedOffset>,
    /// First second regular invoices may be dated, relative to the epoch.
    window_start: i64,
    /// First second of the dedicated closed period (July 2025), relative to the epoch.
    closed_start: i64,
    users: Vec<Value>,
    user_ids: Vec<i64>,
    suppliers: Vec<Supplier>,
    currencies: Vec<Value>,
    /// Per entity: `account-type`, `bill-to-address`.
    account_types: Vec<Value>,
    bill_to: Vec<Value>,
    terms: Vec<Value>,
    /// Index `(entity * DEPARTMENTS + dept) * NATURALS + natural`.
    accounts: Vec<Value>,
    uoms: Vec<Value>,
    pay_from: Vec<Value>,
}

impl World {
    fn at(&self, rel: i64) -> DateTime<FixedOffset> {
        self.epoch + TimeDelta::seconds(rel)
    }

    fn api_user(&self) -> Value {
        self.users[0].clone()
    }

    fn user(&self, idx: usize) -> Value {
        self.users[idx].clone()
    }

    fn build(config: &SimConfig, db: &mut Db) -> World {
        let offset = config.utc_offset;
        let local = |y, m, d, h| {
            offset
                .with_ymd_and_hms(y, m, d, h, 0, 0)
                .single()
                .expect("constant dates exist once in a fixed offset")
        };
        let epoch = local(EPOCH.0, EPOCH.1, EPOCH.2, EPOCH.3);
        let window_start = (local(2025, 8, 1, 0) - epoch).num_seconds();
        let closed_start = (local(2025, 7, 1, 0) - epoch).num_seconds();

        let mut users = Vec::with_capacity(USERS.len());
        let mut user_ids = Vec::with_capacity(USERS.len());
        for u in &USERS {
            let id = db.users.insert_with(|id| user_object(id, u));
            user_ids.push(id);
            users.push(Value::Object(user_object(id, u)));
        }
        if let Some(Value::Object(api)) = users.first() {
            db.api_user = api.clone();
        }

        let currencies = CURRENCIES
            .iter()
            .map(|c| {
                Value::Object(
                    Object::with_capacity(3)
                        .with("id", c.id)
                        .with("code", c.code)
                        .with("decimals", c.decimals),
                )
            })
            .collect::<Vec<_>>();
        let account_types = ENTITIES
            .iter()
            .map(|e| {
                Value::Object(
                    Object::with_capacity(2)
                        .with("id", e.account_type_id)
                        .with("name", e.account_type),
                )
            })
            .collect::<Vec<_>>();
        let bill_to = ENTITIES
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Value::Object(
                    Object::with_capacity(10)
                        .with("id", 21 + i as i64)
                        .with("name", format!("{} - Accounts Payable", e.legal_name))
                        .with("location-code", e.segment)
                        .with("street1", e.street1)
                        .with("street2", Value::Null)
                        .with("city", e.city)
                        .with("state", e.state)
                        .with("postal-code", e.postal)
                        .with("attention", "Accounts Payable")
                        .with("active", true)
                        .with("country", country_value(e.country)),
                )
            })
            .collect::<Vec<_>>();
        let terms = PAYMENT_TERMS
            .iter()
            .enumerate()
            .map(|(i, (code, description, days))| {
                Value::Object(
                    Object::with_capacity(5)
                        .with("id", 1 + i as i64)
                        .with("code", *code)
                        .with("description", *description)
                        .with("days-for-net-payment", *days)
                        .with("active", true),
                )
            })
            .collect::<Vec<_>>();
        let mut accounts = Vec::with_capacity(ENTITIES.len() * DEPARTMENTS.len() * NATURALS.len());
        for (e, entity) in ENTITIES.iter().enumerate() {
            for (dept, dept_name) in DEPARTMENTS {
                for (natural, natural_name) in NATURALS {
                    let id = 2001 + accounts.len() as i64;
                    accounts.push(Value::Object(
                        Object::with_capacity(9)
                            .with("id", id)
                            .with(
                                "name",
                                format!("{} - {dept_name}, {natural_name}", entity.city_label),
                            )
                            .with("code", format!("{}-{dept}-{natural}", entity.segment))
                            .with("active", true)
                            .with("segment-1", entity.segment)
                            .with("segment-2", dept)
                            .with("segment-3", natural)
                            .with("account-type", account_types[e].clone()),
                    ));
                }
            }
        }
        let uoms = UOMS
            .iter()
            .enumerate()
            .map(|(i, (code, name))| {
                Value::Object(
                    Object::with_capacity(3)
                        .with("id", 1 + i as i64)
                        .with("code", *code)
                        .with("name", *name),
                )
            })
            .collect::<Vec<_>>();

        let mut world = World {
            epoch,
            window_start,
            closed_start,
            users,
            user_ids,
            suppliers: Vec::new(),
            currencies,
            account_types,
            bill_to,
            terms,
            accounts,
            uoms,
            pay_from: Vec::new(),
        };
        world.pay_from = (0..PAY_FROM.len())
            .map(|i| pay_from_account(&world, i))
            .collect();
        world.suppliers = build_suppliers(&world, config, db);
        world
    }
}

fn user_object(id: i64, u: &UserSeed) -> Object {
    Object::with_capacity(9)
        .with("id", id)
        .with("login", u.login)
        .with("employee-number", u.employee_number)
        .with("firstname", u.first)
        .with("lastname", u.last)
        .with("fullname", format!("{} {}", u.first, u.last))
        .with("email", format!("{}@example.com", u.login))
        .with("salesforce-id", Value::Null)
        .with("avatar-thumb-url", Value::Null)
}

fn country_value(c: usize) -> Value {
    let c = &COUNTRIES[c];
    Value::Object(
        Object::with_capacity(3)
            .with("id", c.id)
            .with("code", c.code)
            .with("name", c.name),
    )
}

fn phone_value(country: usize, area: &str, number: String) -> Value {
    Value::Object(
        Object::with_capacity(4)
            .with("country-code", COUNTRIES[country].phone)
            .with("area-code", area)
            .with("number", number)
            .with("extension", Value::Null),
    )
}

/// Initials of a supplier's display name: `Global Tech Solutions` -> `GTS`.
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn build_suppliers(w: &World, config: &SimConfig, db: &mut Db) -> Vec<Supplier> {
    let mut rng = Rng::new(config.seed, STREAM_SUPPLIERS);
    // Which suppliers the ERP does not know, and which one it has deactivated: never the twins.
    let mut candidates: Vec<usize> = (2..SUPPLIERS.len()).collect();
    rng.shuffle(&mut candidates);
    let roles: Vec<Role> = (0..SUPPLIERS.len())
        .map(|i| {
            if candidates[..UNKNOWN_SUPPLIERS].contains(&i) {
                Role::Unknown
            } else if candidates[UNKNOWN_SUPPLIERS] == i {
                Role::Inactive
            } else {
                Role::Known
            }
        })
        .collect();
    let twin_start = rng.range(100_100, 100_900) as u64;

    let mut out = Vec::with_capacity(SUPPLIERS.len());
    for (i, seed) in SUPPLIERS.iter().enumerate() {
        let role = roles[i];
        let country = &COUNTRIES[seed.country];
        let currency = country.currency;
        let number = match role {
            Role::Unknown => format!("SUP-9{:04}", 100 + i as i64 * 7 + rng.range(0, 6)),
            _ => format!("SUP-{}", 10_001 + i as i64 * 37 + rng.range(0, 36)),
        };
        // Suppliers the ERP feeds were created years ago by the integration; unknown ones were
        // onboarded in Coupa a few months ago by a buyer.
        let (created, creator) = match role {
            Role::Unknown => (rng.range(-150 * DAY, -90 * DAY), 1 + rng.below(4)),
            _ => (rng.range(-7 * 365 * DAY, -480 * DAY), 0),
        };
        let updated = match role {
            Role::Inactive => rng.range(-60 * DAY, -20 * DAY),
            _ => created + rng.range(0, 200 * DAY),
        };
        let (created_at, updated_at) = (w.at(created), w.at(updated));
        let created_by = w.user(creator);
        let updated_by = if role == Role::Unknown {
            created_by.clone()
        } else {
            w.api_user()
        };
        // The table chooses the id; the row is filled in once the embedded copies are built.
        let id = db.suppliers.insert_with(|id| Object::new().with("id", id));
        let display = if rng.chance(150) { "" } else { seed.display };

        let email = format!(
            "{}.{}@{}",
            seed.contact.0.to_lowercase(),
            seed.contact.1.to_lowercase().replace(' ', ""),
            seed.domain
        );
        let work = phone_value(
            seed.country,
            seed.area,
            format!("555{:04}", rng.range(100, 9999)),
        );
        let mobile = phone_value(
            seed.country,
            seed.area,
            format!("555{:04}", rng.range(100, 9999)),
        );
        let contact_id = 1500 + i as i64;
        let address_id = 3000 + i as i64 * 2;
        let state = if seed.state.is_empty() {
            Value::Null
        } else {
            Value::from(seed.state)
        };
        let vat = match seed.country {
            US | CA => Value::Null,
            c => Value::from(format!(
                "{}{}",
                COUNTRIES[c].code,
                100_000_000 + rng.range(0, 899_999_999)
            )),
        };
        let contact_full = Object::with_capacity(18)
            .with("id", contact_id)
            .with("created-at", created_at)
            .with("updated-at", created_at)
            .with("email", email.clone())
            .with("name-prefix", Value::Null)
            .with("name-suffix", Value::Null)
            .with("name-additional", Value::Null)
            .with("name-given", seed.contact.0)
            .with("name-family", seed.contact.1)
            .with("name-fullname", Value::Null)
            .with("notes", Value::Null)
            .with("active", true)
            .with("phone-work", work.clone())
            .with("phone-mobile", mobile.clone())
            .with("phone-fax", Value::Null)
            .with("purposes", Vec::<Value>::new())
            .with("created-by", created_by.clone())
            .with("updated-by", created_by.clone());
        let address_full = Object::with_capacity(23)
            .with("id", address_id)
            .with("created-at", created_at)
            .with("updated-at", created_at)
            .with("name", seed.name)
            .with("location-code", Value::Null)
            .with("street1", seed.street1)
            .with("street2", "")
            .with("city", seed.city)
            .with("state", state.clone())
            .with("postal-code", seed.postal)
            .with("attention", Value::Null)
            .with("active", true)
            .with("business-group-name", Value::Null)
            .with("vat-number", vat.clone())
            .with("local-tax-number", Value::Null)
            .with("country", country_value(seed.country))
            .with(
                "vat-country",
                if vat.is_null() {
                    Value::Null
                } else {
                    country_value(seed.country)
                },
            )
            .with("content-groups", Vec::<Value>::new())
            .with("purposes", Vec::<Value>::new())
            .with("tax-registrations", Vec::<Value>::new())
            .with("created-by", created_by.clone())
            .with("updated-by", created_by.clone());
        let status = if role == Role::Inactive {
            "inactive"
        } else {
            "active"
        };

        let term = match rng.below(10) {
            0..=4 => 0,
            5 | 6 => 1,
            7 => 2,
            8 => TERM_DISCOUNT,
            _ => 4,
        };
        let payee = Object::with_capacity(7)
            .with("id", id)
            .with("name", seed.name)
            .with("display-name", display)
            .with("number", number.clone())
            .with("status", status)
            .with("primary-contact", contact_full.clone())
            .with("primary-address", address_full.clone());
        let embed = Object::with_capacity(7)
            .with("id", id)
            .with("name", seed.name)
            .with("display-name", display)
            .with("number", number.clone())
            .with("status", status)
            .with(
                "primary-contact",
                Object::with_capacity(11)
                    .with("id", contact_id)
                    .with("email", email.clone())
                    .with("name-additional", Value::Null)
                    .with("name-family", seed.contact.1)
                    .with("name-fullname", Value::Null)
                    .with("name-given", seed.contact.0)
                    .with("name-prefix", Value::Null)
                    .with("name-suffix", Value::Null)
                    .with("notes", Value::Null)
                    .with("phone-work", work)
                    .with("phone-mobile", mobile),
            )
            .with(
                "primary-address",
                Object::with_capacity(9)
                    .with("id", address_id)
                    .with("name", seed.name)
                    .with("street1", seed.street1)
                    .with("street2", "")
                    .with("city", seed.city)
                    .with("state", state.clone())
                    .with("postal-code", seed.postal)
                    .with("attention", Value::Null)
                    .with("country", country_value(seed.country)),
            );
        let remit_to = Object::with_capacity(11)
            .with("id", address_id + 1)
            .with("remit-to-code", format!("RT-{number}"))
            .with("name", format!("{} - Remittance", seed.name))
            .with(
                "street1",
                if seed.country == US {
                    format!("PO Box {}", rng.range(1000, 98_999))
                } else {
                    seed.street1.to_owned()
                },
            )
            .with("street2", Value::Null)
            .with("city", seed.city)
            .with("state", state)
            .with("postal-code", seed.postal)
            .with("active", true)
            .with("vat-number", vat)
            .with("country", country_value(seed.country));

        let entity = currency;
        let (tax_rate, line_level) = match seed.country {
            US if seed.cat.goods() => {
                let rates = [625, 725, 825, 8875, 600];
                let r = *rng.pick(&rates);
                (Decimal::new(r, if r == 8875 { 3 } else { 2 }), false)
            }
            US => (Decimal::new(0, 2), false),
            DE | FR | NL => (Decimal::new(1900, 2), true),
            GB => (Decimal::new(2000, 2), true),
            _ => (Decimal::new(1300, 2), false),
        };
        let tax_code = if tax_rate.is_zero() {
            Object::with_capacity(2)
                .with("id", EXEMPT_TAX_CODE_ID)
                .with("code", "EXEMPT")
        } else {
            Object::with_capacity(2)
                .with("id", ENTITIES[entity].tax_code_id)
                .with("code", ENTITIES[entity].tax_code)
        };

        let numbering = match (i, seed.country) {
            (TWIN_A | TWIN_B, _) => Numbering::Plain,
            (_, DE) => Numbering::Yearly("RE-"),
            (_, NL) => Numbering::Yearly("F"),
            (_, FR) => Numbering::Yearly("FA-"),
            (_, GB) => Numbering::Inv,
            _ => match rng.below(3) {
                0 => Numbering::Plain,
                1 => Numbering::Inv,
                _ => Numbering::Initials(initials(seed.display)),
            },
        };
        let first_number = match (i, &numbering) {
            (TWIN_A | TWIN_B, _) => twin_start,
            (_, Numbering::Plain) => rng.range(1_000, 90_000) as u64,
            (_, Numbering::Inv) => rng.range(1_000, 60_000) as u64,
            (_, Numbering::Yearly(_)) => rng.range(10, 900) as u64,
            (_, Numbering::Initials(_)) => rng.range(10_000, 70_000) as u64,
        };
        let rail = match currency {
            USD => match rng.below(20) {
                0..=4 => Rail::VirtualCard,
                5..=14 => Rail::Ach,
                15..=17 => Rail::Check,
                _ => Rail::Wire,
            },
            EUR => {
                if rng.chance(500) {
                    Rail::Sepa
                } else {
                    Rail::Wire
                }
            }
            _ => Rail::Wire,
        };
        let weight = match (i, role) {
            (_, Role::Unknown) => 0,
            (TWIN_A | TWIN_B, _) => 8,
            _ => rng.range(1, 12) as u64,
        };

        let row = Object::with_capacity(20)
            .with("id", id)
            .with("created-at", created_at)
            .with("updated-at", updated_at)
            .with("name", seed.name)
            .with("display-name", display)
            .with("number", number.clone())
            .with("status", status)
            .with("website", format!("https://www.{}", seed.domain))
            .with(
                "tax-id",
                if seed.country == US {
                    Value::from(format!(
                        "{:02}-{:07}",
                        rng.range(10, 99),
                        rng.range(0, 9_999_999)
                    ))
                } else {
                    Value::Null
                },
            )
            .with("po-method", if seed.cat.goods() { "cxml" } else { "email" })
            .with("po-email", format!("orders@{}", seed.domain))
            .with("payment-method", "invoice")
            .with(
                "invoice-matching-level",
                if seed.cat.goods() { "3-way" } else { "2-way" },
            )
            .with("on-hold", false)
            .with("one-time-supplier", false)
            .with("payment-term", w.terms[term].clone())
            .with("primary-contact", contact_full)
            .with("primary-address", address_full)
            .with("created-by", created_by)
            .with("updated-by", updated_by);
        if let Some(slot) = db.suppliers.get_mut(id) {
            *slot = row;
        }

        let mut supplier = Supplier {
            seed,
            role,
            currency,
            entity,
            term,
            tax_rate,
            line_level,
            numbering,
            first_number,
            rail,
            weight,
            embed: Value::Object(embed),
            payee: Value::Object(payee),
            remit_to: Value::Object(remit_to),
            tax_code: Value::Object(tax_code),
            pay_to_account: Value::Null,
        };
        supplier.pay_to_account = supplier_pay_to_account(w, &supplier, i, &mut rng);
        out.push(supplier);
    }
    out
}

fn supplier_pay_to_account(w: &World, s: &Supplier, i: usize, rng: &mut Rng) -> Value {
    let (name, kind, option) = match s.rail {
        Rail::VirtualCard => (
            format!(
                "Virtual Card {}*****@{}",
                &s.seed.contact.0[..1].to_lowercase(),
                s.seed.domain
            ),
            "virtual_card",
            Value::from("email"),
        ),
        Rail::Check => (
            "Check - remit-to address".to_owned(),
            "check",
            Value::from("mail"),
        ),
        Rail::Ach | Rail::Wire | Rail::Sepa => (
            format!(
                "{} ****{:04}",
                match s.rail {
                    Rail::Ach => "ACH",
                    Rail::Sepa => "SEPA",
                    _ => "Wire",
                },
                rng.range(0, 9999)
            ),
            "bank_account",
            Value::Null,
        ),
    };
    let created = w.at(rng.range(-700 * DAY, -500 * DAY));
    Value::Object(
        Object::with_capacity(18)
            .with("id", 1400 + i as i64)
            .with("created-at", created)
            .with("updated-at", created)
            .with("coupa-pay-id", 1412 + i as i64)
            .with("type", "CoupaPay::SupplierPaymentAccount")
            .with("account-name", name)
            .with("source-name", "cpaui")
            .with("account-kind", kind)
            .with("payment-option", option)
            .with("status", "active")
            .with("document-types", vec![Value::from("invoice")])
            .with("virtual-card-days-valid", Value::Null)
            .with("include-cvv-in-cxml", Value::Null)
            .with("connect-remit-to-address-id", Value::Null)
            .with("currency", w.currencies[s.currency].clone())
            .with("supplier", s.payee.clone())
            .with("remit-to-address", s.remit_to.clone())
            .with("created-by", w.user(AP_USERS[i % AP_USERS.len()]))
            .with("updated-by", w.user(AP_USERS[i % AP_USERS.len()])),
    )
}

fn employee_pay_to_account(w: &World, user: usize) -> Value {
    let created = w.at(-600 * DAY + user as i64 * 3 * DAY);
    Value::Object(
        Object::with_capacity(15)
            .with("id", 1600 + user as i64)
            .with("created-at", created)
            .with("updated-at", created)
            .with("coupa-pay-id", 1620 + user as i64)
            .with("type", "CoupaPay::EmployeePaymentAccount")
            .with(
                "account-name",
                format!("Direct deposit ****{:04}", 1000 + user * 617 % 9000),
            )
            .with("source-name", Value::Null)
            .with("account-kind", "bank_account")
            .with("payment-option", Value::Null)
            .with("status", "active")
            .with("document-types", vec![Value::from("expense_report")])
            .with("currency", w.currencies[USD].clone())
            .with("user", w.user(user))
            .with("created-by", w.user(user))
            .with("updated-by", w.user(user)),
    )
}

fn pay_from_account(w: &World, i: usize) -> Value {
    let d = &PAY_FROM[i];
    let entity = &ENTITIES[d.entity];
    let created = w.at(-800 * DAY + i as i64 * 5 * DAY);
    let updated = w.at(-420 * DAY + i as i64 * DAY);
    let support = w.user(10);
    let configuration = if d.kind == "virtual_card" {
        Value::Object(
            Object::with_capacity(4)
                .with("expiry-days", "30")
                .with("tolerance-pct", "0.0")
                .with("fx-tolerance-pct", "5.0")
                .with("invoice-tolerance-pct", "0.0"),
        )
    } else {
        Value::Null
    };
    let account_type = Object::with_capacity(9)
        .with("id", entity.account_type_id)
        .with("created-at", created)
        .with("updated-at", updated)
        .with("name", entity.account_type)
        .with("active", true)
        .with("legal-entity-name", entity.legal_name)
        .with("dynamic-flag", false)
        .with("currency", w.currencies[d.currency].clone());
    let partner = Object::with_capacity(14)
        .with("id", d.partner_id)
        .with("created-at", created)
        .with("updated-at", updated)
        .with("name", d.partner)
        .with("issuing-bank", d.issuing_bank)
        .with("type", d.partner_type)
        .with("payment-partner-type", d.partner_kind)
        .with("notes", Value::Null)
        .with("configuration", configuration)
        .with("support-contact", support.clone())
        .with("currency", w.currencies[d.currency].clone())
        .with("account-types", vec![Value::Object(account_type)])
        .with("created-by", support.clone())
        .with("updated-by", support.clone());
    let mut doc_types = vec![Value::from("invoice")];
    if d.expenses {
        doc_types.push(Value::from("expense_report"));
    }
    Value::Object(
        Object::with_capacity(14)
            .with("id", d.id)
            .with("created-at", created)
            .with("updated-at", updated)
            .with("coupa-pay-id", d.id + 11)
            .with("account-name", d.name)
            .with("source-name", Value::Null)
            .with("account-kind", d.kind)
            .with("payment-option", Value::Null)
            .with("status", "active")
            .with("document-types", doc_types)
            .with("currency", w.currencies[d.currency].clone())
            .with("payment-partner", partner)
            .with("account-types", Vec::<Value>::new())
            .with("created-by", support.clone())
            .with("updated-by", support),
    )
}

// ---------------------------------------------------------------------------------------------
// Invoices

const BLOCK: usize = 100;

/// Statuses other than approved and voided, with how many of each per 100 invoices (37).
const OTHER_STATUSES: [(&str, usize); 14] = [
    ("pending_approval", 4),
    ("new", 3),
    ("draft", 3),
    ("ap_hold", 3),
    ("on_hold", 3),
    ("pending_receipt", 3),
    ("disputed", 3),
    ("rejected", 3),
    ("abandoned", 2),
    ("booking_hold", 2),
    ("pending_action", 2),
    ("processing", 2),
    ("invalid", 2),
    ("payable_adjustment", 2),
];
const APPROVED_PER_BLOCK: usize = 55;
const VOIDED_PER_BLOCK: usize = 8;

/// What an invoice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Approved, any known supplier.
    Approved,
    /// Approved, dated in the closed period, received late.
    Closed,
    /// Approved, from a supplier the ERP does not know.
    Unknown,
    /// Approved, from the supplier the ERP has deactivated.
    Inactive,
    /// Approved, from one twin; its number is shared with the other twin's invoice of the pair.
    Twin(usize),
    Other(&'static str),
}

fn block_slots(block: usize) -> Vec<Slot> {
    // 2 and 1 alternately: 1.5 closed-period invoices per 55 approved, about 3 %.
    let closed = match block % 2 {
        0 => 2,
        _ => 1,
    };
    let mut v = Vec::with_capacity(BLOCK);
    v.extend(std::iter::repeat_n(
        Slot::Approved,
        APPROVED_PER_BLOCK - closed - 4,
    ));
    v.extend(std::iter::repeat_n(Slot::Closed, closed));
    v.extend([
        Slot::Unknown,
        Slot::Inactive,
        Slot::Twin(TWIN_A),
        Slot::Twin(TWIN_B),
    ]);
    v.extend(std::iter::repeat_n(Slot::Other("voided"), VOIDED_PER_BLOCK));
    for (status, n) in OTHER_STATUSES {
        v.extend(std::iter::repeat_n(Slot::Other(status), n));
    }
    debug_assert_eq!(v.len(), BLOCK);
    v
}

fn in_flight(status: &str) -> bool {
    !matches!(
        status,
        "approved" | "voided" | "rejected" | "abandoned" | "payable_adjustment"
    )
}

struct InvSpec {
    order: usize,
    slot: Slot,
    status: &'static str,
    supplier: usize,
    /// Seconds relative to the epoch.
    created: i64,
    /// The twin pair (block index) of a `Slot::Twin` invoice.
    pair: usize,
}

/// An approved invoice a Coupa Pay payment may pay.
struct Eligible {
    id: i64,
    number: String,
    supplier: usize,
    amount: Decimal,
    /// When it was approved, relative to the epoch.
    approved: i64,
}

/// A time between 07:00 and 19:00 local, `days_lo..=days_hi` days before the epoch, never later
/// than 30 minutes before it.
fn business_time(rng: &mut Rng, days_lo: i64, days_hi: i64) -> i64 {
    let day = rng.range(days_lo, days_hi);
    let t = -(EPOCH.3 as i64) * HOUR - day * DAY + rng.range(7 * HOUR, 19 * HOUR);
    t.min(-30 * MINUTE)
}

fn seed_invoices(w: &World, config: &SimConfig, db: &mut Db) -> Vec<Eligible> {
    let n = config.invoices;
    let mut rng = Rng::new(config.seed, STREAM_INVOICES);
    let weights: Vec<u64> = w.suppliers.iter().map(|s| s.weight).collect();
    let unknown: Vec<usize> = (0..w.suppliers.len())
        .filter(|&i| w.suppliers[i].role == Role::Unknown)
        .collect();
    let inactive = (0..w.suppliers.len())
        .find(|&i| w.suppliers[i].role == Role::Inactive)
        .unwrap_or(2);
    let window_days = -w.window_start / DAY;

    let mut specs = Vec::with_capacity(n);
    let mut slots = Vec::new();
    for order in 0..n {
        if order % BLOCK == 0 {
            slots = block_slots(order / BLOCK);
            rng.shuffle(&mut slots);
        }
        let slot = slots[order % BLOCK];
        let status = match slot {
            Slot::Other(s) => s,
            _ => "approved",
        };
        let supplier = match slot {
            Slot::Unknown => *rng.pick(&unknown),
            Slot::Inactive => inactive,
            Slot::Twin(t) => t,
            _ => rng.weighted(&weights),
        };
        let created = match slot {
            Slot::Closed => business_time(&mut rng, 2, 45),
            Slot::Unknown => business_time(&mut rng, 1, 60),
            Slot::Other(s) if in_flight(s) && !rng.chance(150) => business_time(&mut rng, 0, 75),
            _ => business_time(&mut rng, 1, window_days - 3),
        };
        specs.push(InvSpec {
            order,
            slot,
            status,
            supplier,
            created,
            pair: order / BLOCK,
        });
    }
    // Ids grow with creation time, as in Coupa.
    specs.sort_unstable_by_key(|s| (s.created, s.order));

    let mut invoice_gen = InvoiceGen {
        w,
        rng,
        next_line_id: 10_001,
        next_number: w.suppliers.iter().map(|s| s.first_number).collect(),
        twin_next: w.suppliers[TWIN_A].first_number,
        pair_numbers: vec![None; n.div_ceil(BLOCK)],
    };
    let mut eligible = Vec::new();
    for spec in &specs {
        let mut found = None;
        db.invoices.insert_with(|id| {
            let (row, e) = invoice_gen.invoice(id, spec);
            found = e;
            row
        });
        eligible.extend(found);
    }
    eligible
}

struct InvoiceGen<'a> {
    w: &'a World,
    rng: Rng,
    next_line_id: i64,
    next_number: Vec<u64>,
    /// The twins' shared sequence.
    twin_next: u64,
    /// Per block, the number the first invoice of the twin pair took.
    pair_numbers: Vec<Option<u64>>,
}

impl InvoiceGen<'_> {
    /// The invoice's number in its supplier's style. The twins draw from one shared sequence,
    /// so their numbers never repeat per supplier; the two invoices of a twin pair take the same
    /// number, the first one allocating it and the second one reusing it.
    fn number(&mut self, spec: &InvSpec, year: i32) -> String {
        let s = spec.supplier;
        let n = if s == TWIN_A || s == TWIN_B {
            let pair = match spec.slot {
                Slot::Twin(_) => self.pair_numbers.get_mut(spec.pair),
                _ => None,
            };
            let shared = pair.as_ref().and_then(|p| **p);
            match (shared, pair) {
                (Some(n), Some(p)) => {
                    *p = None;
                    n
                }
                (_, pair) => {
                    let n = self.twin_next;
                    self.twin_next += 1;
                    if let Some(p) = pair {
                        *p = Some(n);
                    }
                    n
                }
            }
        } else {
            let n = self.next_number[s];
            // Now and then a number is skipped (cancelled before reaching Coupa).
            self.next_number[s] += 1 + u64::from(self.rng.chance(200));
            n
        };
        self.w.suppliers[s].numbering.format(n, year)
    }

    fn invoice(&mut self, id: i64, spec: &InvSpec) -> (Object, Option<Eligible>) {
        let w = self.w;
        let s = &w.suppliers[spec.supplier];
        let cur = &CURRENCIES[s.currency];
        let dp = cur.decimals;
        let status = spec.status;

        // Dates.
        let created_rel = spec.created;
        let created = w.at(created_rel);
        let invoice_date = if spec.slot == Slot::Closed {
            midnight(w.at(w.closed_start + self.rng.range(0, 30) * DAY + 12 * HOUR))
        } else {
            let d = midnight(w.at(created_rel - self.rng.range(0, 10) * DAY));
            d.max(w.at(w.window_start))
        };
        let final_state = !in_flight(status);
        let mut updated_rel = if final_state {
            created_rel + self.rng.range(HOUR, 12 * DAY)
        } else {
            created_rel + self.rng.range(0, 3 * DAY)
        }
        .min(-MINUTE);
        let age_days = -created_rel / DAY;
        let exportable = matches!(
            spec.slot,
            Slot::Approved | Slot::Inactive | Slot::Twin(_) | Slot::Other("voided")
        );
        let exported = exportable && age_days > 270 && self.rng.chance(650);
        let mut last_exported = Value::Null;
        if exported {
            updated_rel = (updated_rel + self.rng.range(10 * MINUTE, 6 * HOUR)).min(-MINUTE);
            last_exported = Value::DateTime(w.at(updated_rel));
        }
        let number = self.number(spec, invoice_date.year());

        // Lines.
        let cat = s.seed.cat;
        let items = cat.items();
        let n_lines = 1 + self.rng.weighted(&[35, 25, 20, 12, 8]);
        let po = if self.rng.chance(if cat.goods() { 700 } else { 350 }) {
            Some(self.rng.range(4_000, 48_000).to_string())
        } else {
            None
        };
        let line_status = match status {
            "approved" if po.is_some() => "matched",
            "new" => "draft",
            other => other,
        };
        let ap_clerk = AP_USERS[self.rng.below(AP_USERS.len())];
        let approver = AP_USERS[self.rng.below(AP_USERS.len())];
        let requester = 1 + self.rng.below(w.users.len() - 1);
        let hundred = Decimal::ONE_HUNDRED;
        let mut net = zero(dp);
        let mut line_tax_sum = zero(dp);
        let mut lines = Vec::with_capacity(n_lines);
        for line_num in 1..=n_lines {
            let it = self.rng.pick(items);
            let qty = match it.qty {
                Qty::One => Decimal::new(10, 1),
                Qty::Whole(lo, hi) => Decimal::new(self.rng.range(lo, hi) * 10, 1),
                Qty::Quarter(lo, hi) => Decimal::new(self.rng.range(lo * 4, hi * 4) * 25, 2),
            };
            let price = Decimal::new(self.rng.range(it.price.0, it.price.1), it.price_dp);
            let total = money(qty * price, dp);
            let (tax_amount, tax_rate) = if s.line_level {
                (
                    money(total * s.tax_rate / hundred, dp),
                    Value::Decimal(s.tax_rate),
                )
            } else {
                (zero(dp), Value::Null)
            };
            net += total;
            line_tax_sum += tax_amount;
            let dept = if self.rng.chance(800) {
                cat.department()
            } else {
                self.rng.below(DEPARTMENTS.len())
            };
            let account =
                &w.accounts[(s.entity * DEPARTMENTS.len() + dept) * NATURALS.len() + it.natural];
            let (line_type, uom) = if it.uom.is_empty() {
                ("InvoiceAmountLine", Value::Null)
            } else {
                let u = UOMS.iter().position(|(c, _)| *c == it.uom).unwrap_or(0);
                ("InvoiceQuantityLine", w.uoms[u].clone())
            };
            let line_id = self.next_line_id;
            self.next_line_id += 1;
            let line = Object::with_capacity(26)
                .with("id", line_id)
                .with("created-at", created)
                .with("updated-at", w.at(updated_rel))
                .with("line-num", line_num as i64)
                .with("type", line_type)
                .with("description", it.desc)
                .with("quantity", qty)
                .with("price", price)
                .with("total", total)
                .with("status", line_status)
                .with("accounting-total", total)
                .with("tax-amount", tax_amount)
                .with("tax-rate", tax_rate)
                .with("tax-description", if s.line_level { "VAT" } else { "" })
                .with("po-number", po.clone())
                .with("order-header-num", po.clone())
                .with("order-line-num", po.as_ref().map(|_| line_num.to_string()))
                .with(
                    "source-part-num",
                    if it.uom.is_empty() {
                        Value::Null
                    } else {
                        Value::from(format!("{}-{:05}", it.uom, line_id % 100_000))
                    },
                )
                .with("uom", uom)
                .with("account", account.clone())
                .with("currency", w.currencies[s.currency].clone())
                .with(
                    "accounting-total-currency",
                    w.currencies[s.currency].clone(),
                )
                .with("created-by", w.user(ap_clerk))
                .with("updated-by", w.user(approver));
            lines.push(Value::Object(line));
        }
        let goods = cat.goods();
        let shipping = if goods && self.rng.chance(300) {
            Decimal::new(self.rng.range(15_00, 250_00), 2)
        } else {
            zero(dp)
        };
        let handling = if goods && self.rng.chance(60) {
            Decimal::new(self.rng.range(5_00, 45_00), 2)
        } else {
            zero(dp)
        };
        let misc = if self.rng.chance(30) {
            Decimal::new(self.rng.range(2_50, 120_00), 2)
        } else {
            zero(dp)
        };
        let tax_amount = if s.line_level {
            line_tax_sum
        } else {
            money(net * s.tax_rate / hundred, dp)
        };
        let total = net + shipping + handling + misc + tax_amount;

        // Payments.
        let mut payments = Vec::new();
        let mut paid = false;
        let mut payment_date = Value::Null;
        let mut payment_notes = Value::Null;
        let mut partial = false;
        if status == "approved" && exported && self.rng.chance(700) {
            let at_rel = (updated_rel + self.rng.range(15 * DAY, 50 * DAY)).min(-HOUR);
            let at = w.at(at_rel);
            let check = self.rng.range(10_000, 99_999).to_string();
            payments.push(self.payment(id, 1, at, total, &check));
            paid = true;
            payment_date = Value::DateTime(midnight(at));
            payment_notes = Value::from(format!("Paid in full by check {check}"));
            updated_rel = updated_rel.max(at_rel);
        } else if status == "approved"
            && !exported
            && spec.slot == Slot::Approved
            && self.rng.chance(40)
        {
            let at_rel = (updated_rel + self.rng.range(DAY, 20 * DAY)).min(-HOUR);
            let share = Decimal::new(self.rng.range(30, 70), 2);
            let check = self.rng.range(10_000, 99_999).to_string();
            payments.push(self.payment(id, 1, w.at(at_rel), money(total * share, dp), &check));
            partial = true;
            updated_rel = updated_rel.max(at_rel);
        }

        let term_days = PAYMENT_TERMS[s.term].2;
        let lock_version = 1 + self.rng.range(0, 4) + i64::from(exported) + payments.len() as i64;
        let channel = *self.rng.pick(&[
            "supplier_portal",
            "supplier_portal",
            "email",
            "cxml",
            "buyer_manual",
        ]);
        let internal_note = if spec.slot == Slot::Closed {
            Value::from("Received late from supplier; original was sent to the wrong address.")
        } else if self.rng.chance(200) {
            Value::from(*self.rng.pick(&[
                "Approved per contract terms.",
                "Price variance accepted by requester.",
                "Partial shipment; remainder backordered.",
                "Coded to cost center per budget owner.",
            ]))
        } else {
            Value::Null
        };
        let supplier_note = if self.rng.chance(150) {
            Value::from(*self.rng.pick(&[
                "Thank you for your business.",
                "Please reference the invoice number on your remittance.",
                "Late payments are subject to a 1.5% monthly fee.",
            ]))
        } else {
            Value::Null
        };
        let comments = match status {
            "disputed" => Value::from("Quantity billed does not match receipt."),
            "on_hold" | "ap_hold" => Value::from("Waiting for a corrected remit-to address."),
            "rejected" => Value::from("Duplicate of an invoice already processed."),
            _ => Value::Null,
        };
        let custom_fields = Object::with_capacity(4)
            .with("cf-erp-invoice-number", Value::Null)
            .with("cf-integration-status", Value::Null)
            .with(
                "cf-cost-center-approver",
                if final_state {
                    w.users[approver]
                        .pointer(&["fullname"])
                        .cloned()
                        .unwrap_or_default()
                } else {
                    Value::Null
                },
            )
            .with(
                "cf-project-code",
                if self.rng.chance(400) {
                    Value::from(format!("PRJ-{}", self.rng.range(1000, 1099)))
                } else {
                    Value::Null
                },
            );
        let updated = w.at(updated_rel);
        let updated_by = if exported {
            w.api_user()
        } else {
            w.user(approver)
        };

        let row = Object::with_capacity(60)
            .with("id", id)
            .with("created-at", created)
            .with("updated-at", updated)
            .with("invoice-number", number.clone())
            .with("invoice-date", invoice_date)
            .with("status", status)
            .with("document-type", "Invoice")
            .with("is-credit-note", false)
            .with("original-invoice-number", Value::Null)
            .with("original-invoice-date", Value::Null)
            .with("channel", channel)
            .with("date-received", midnight(created))
            .with("net-due-date", invoice_date + TimeDelta::days(term_days))
            .with("exported", exported)
            .with("last-exported-at", last_exported)
            .with("paid", paid)
            .with("payment-date", payment_date)
            .with("payment-notes", payment_notes)
            .with("line-level-taxation", s.line_level)
            .with(
                "tax-rate",
                if s.line_level {
                    Value::Null
                } else {
                    Value::Decimal(s.tax_rate)
                },
            )
            .with("tax-amount", tax_amount)
            .with("shipping-amount", shipping)
            .with("handling-amount", handling)
            .with("misc-amount", misc)
            .with("gross-total", total)
            .with("total-with-taxes", total)
            .with("amount-due", total)
            .with("discount-amount", zero(dp))
            .with("compliant", true)
            .with("lock-version-key", lock_version)
            .with("internal-note", internal_note)
            .with("supplier-note", supplier_note)
            .with("comments", comments)
            .with("invoice-description", Value::Null)
            .with("image-scan-url", Value::Null)
            .with("currency", w.currencies[s.currency].clone())
            .with("supplier", s.embed.clone())
            .with("payment-term", w.terms[s.term].clone())
            .with("account-type", w.account_types[s.entity].clone())
            .with("bill-to-address", w.bill_to[s.entity].clone())
            .with("remit-to-address", s.remit_to.clone())
            .with("tax-code", s.tax_code.clone())
            .with("requested-by", w.user(requester))
            .with("created-by", w.user(ap_clerk))
            .with("updated-by", updated_by)
            .with("invoice-lines", lines)
            .with("payments", payments)
            .with("custom-fields", custom_fields)
            .with("current-integration-history-records", Vec::<Value>::new())
            .with("attachments", Vec::<Value>::new())
            .with("tags", Vec::<Value>::new());

        // Approved at least two days before the epoch, so a payment can follow it.
        let eligible = (status == "approved"
            && !exported
            && !partial
            && updated_rel <= -2 * DAY
            && s.role == Role::Known
            && matches!(spec.slot, Slot::Approved | Slot::Twin(_)))
        .then_some(Eligible {
            id,
            number,
            supplier: spec.supplier,
            amount: total,
            approved: updated_rel,
        });
        (row, eligible)
    }

    /// A payment on an invoice, as `Db::add_payments` records them.
    fn payment(
        &self,
        invoice_id: i64,
        n: i64,
        at: DateTime<FixedOffset>,
        amount: Decimal,
        check: &str,
    ) -> Value {
        let p = crate::store::NewPayment {
            amount_paid: amount,
            notes: Some(check.to_owned()),
            payment_date: Some(midnight(at)),
        };
        crate::store::payment_record(invoice_id, n, &p, at, &self.w.api_user())
    }
}

// ---------------------------------------------------------------------------------------------
// Coupa Pay payments

const PAY_BLOCK: usize = 20;
const PAY_STATUSES: [(&str, usize); 7] = [
    ("completed_successfully", 12),
    ("completed_with_errors", 2),
    ("draft", 1),
    ("approved", 1),
    ("payment_initiated", 1),
    ("payment_in_progress", 2),
    ("cancelled", 1),
];
const EMPLOYEE_PER_BLOCK: usize = 3;
const EXPENSE_REPORT_FIRST_ID: i64 = 620_001;

const PAY_ERRORS: [&str; 4] = [
    "Payment returned by beneficiary bank: account closed (R02).",
    "Payment returned by beneficiary bank: invalid account number (R03).",
    "Virtual card authorization declined: amount exceeds card limit.",
    "Beneficiary bank rejected the wire: name does not match account.",
];

const EXPENSE_PURPOSES: [&str; 6] = [
    "Customer visit",
    "Sales conference",
    "Team offsite",
    "Training course",
    "Trade show",
    "Supplier audit",
];

#[derive(Debug, Clone, Copy)]
enum Payee {
    Supplier(usize),
    Employee(usize),
}

struct DetailSpec {
    source_id: i64,
    reference: String,
    transaction: Decimal,
    discount: Decimal,
}

struct PaySpec {
    order: usize,
    status: &'static str,
    payee: Payee,
    from: usize,
    to_currency: usize,
    created: i64,
    details: Vec<DetailSpec>,
    description: String,
}

fn pay_released(status: &str) -> bool {
    matches!(
        status,
        "payment_initiated"
            | "payment_in_progress"
            | "completed_successfully"
            | "completed_with_errors"
    )
}

fn seed_pay_payments(w: &World, config: &SimConfig, eligible: &[Eligible], db: &mut Db) {
    let n = config.pay_payments;
    let mut rng = Rng::new(config.seed, STREAM_PAY);
    let mut by_supplier: Vec<Vec<usize>> = vec![Vec::new(); w.suppliers.len()];
    for (i, e) in eligible.iter().enumerate() {
        by_supplier[e.supplier].push(i);
    }
    let mut cursor = vec![0usize; w.suppliers.len()];
    let mut next_expense = EXPENSE_REPORT_FIRST_ID;

    let mut specs = Vec::with_capacity(n);
    let mut statuses = Vec::new();
    let mut employees = Vec::new();
    for order in 0..n {
        if order % PAY_BLOCK == 0 {
            statuses = PAY_STATUSES
                .iter()
                .flat_map(|(s, k)| std::iter::repeat_n(*s, *k))
                .collect::<Vec<_>>();
            rng.shuffle(&mut statuses);
            employees = (0..PAY_BLOCK).map(|i| i < EMPLOYEE_PER_BLOCK).collect();
            rng.shuffle(&mut employees);
        }
        let status = statuses[order % PAY_BLOCK];
        let recent = !pay_released(status) && status != "cancelled";
        let employee = employees[order % PAY_BLOCK] || eligible.is_empty();
        let spec = if employee {
            let user = 1 + rng.below(w.users.len() - 1);
            let k = 1 + rng.below(2);
            let purpose = *rng.pick(&EXPENSE_PURPOSES);
            let details = (0..k)
                .map(|_| {
                    next_expense += rng.range(1, 40);
                    DetailSpec {
                        source_id: next_expense,
                        reference: next_expense.to_string(),
                        transaction: Decimal::new(rng.range(35_00, 3_200_00), 2),
                        discount: zero(2),
                    }
                })
                .collect();
            let created = if recent {
                business_time(&mut rng, 0, 8)
            } else {
                business_time(&mut rng, 1, 360)
            };
            PaySpec {
                order,
                status,
                payee: Payee::Employee(user),
                from: EMPLOYEE_PAY_FROM,
                to_currency: USD,
                created,
                details,
                description: format!(
                    "Expense reimbursement - {purpose} - {} {}",
                    USERS[user].first, USERS[user].last
                ),
            }
        } else {
            // A payee with invoices left to pay, if there is one.
            let mut s = eligible[rng.below(eligible.len())].supplier;
            for _ in 0..8 {
                if cursor[s] < by_supplier[s].len() {
                    break;
                }
                s = eligible[rng.below(eligible.len())].supplier;
            }
            let list = &by_supplier[s];
            // Invoices not paid yet first; only when the payee has none left is one paid again.
            let remaining = list.len().saturating_sub(cursor[s]);
            let k = (1 + rng.weighted(&[55, 30, 15])).min(if remaining > 0 {
                remaining
            } else {
                list.len()
            });
            let sup = &w.suppliers[s];
            let mut details = Vec::with_capacity(k);
            let mut latest = i64::MIN;
            for _ in 0..k {
                let e = &eligible[list[cursor[s] % list.len()]];
                cursor[s] += 1;
                latest = latest.max(e.approved);
                let discount = if sup.term == TERM_DISCOUNT && rng.chance(500) {
                    money(
                        e.amount * Decimal::new(2, 2),
                        CURRENCIES[sup.currency].decimals,
                    )
                } else {
                    zero(CURRENCIES[sup.currency].decimals)
                };
                details.push(DetailSpec {
                    source_id: e.id,
                    reference: e.number.clone(),
                    transaction: e.amount,
                    discount,
                });
            }
            let created = if recent {
                (latest + HOUR).max(business_time(&mut rng, 0, 8))
            } else {
                latest + rng.range(DAY, 25 * DAY)
            }
            .min(-HOUR);
            PaySpec {
                order,
                status,
                payee: Payee::Supplier(s),
                from: sup.rail as usize,
                to_currency: sup.currency,
                created,
                details,
                description: format!(
                    "Invoice payment - {} - {k} invoice{}",
                    sup.seed.name,
                    if k == 1 { "" } else { "s" }
                ),
            }
        };
        specs.push(spec);
    }
    specs.sort_unstable_by_key(|s| (s.created, s.order));

    let employee_accounts: Vec<Value> = (0..w.users.len())
        .map(|u| employee_pay_to_account(w, u))
        .collect();
    let mut next_detail = 8_001i64;
    let mut next_batch = 201i64;
    let mut next_check = 100_245i64;
    let mut batch: Option<(i64, Value, i64, i64)> = None; // id, object, start, lines left
    let mut line_in_batch = 0i64;
    for spec in &specs {
        // Payments released together share a batch; drafts are not batched yet.
        let mut batch_ref = None;
        if spec.status != "draft" {
            let reuse = matches!(&batch, Some((_, _, start, left)) if *left > 0 && spec.created - *start < DAY);
            if !reuse {
                let id = next_batch;
                next_batch += 1;
                let user = w.user(AP_USERS[rng.below(AP_USERS.len())]);
                let releaser = w.user(1);
                let object = Object::with_capacity(7)
                    .with("id", id)
                    .with("created-at", w.at(spec.created))
                    .with(
                        "updated-at",
                        w.at((spec.created + 30 * MINUTE).min(-MINUTE)),
                    )
                    .with("status", "approved")
                    .with("description", Value::Null)
                    .with("created-by", user)
                    .with("updated-by", releaser);
                batch = Some((id, Value::Object(object), spec.created, rng.range(1, 6)));
                line_in_batch = 0;
            }
            if let Some((id, object, _, left)) = batch.as_mut() {
                *left -= 1;
                line_in_batch += 1;
                batch_ref = Some((*id, object.clone(), line_in_batch));
            }
        }
        let check_number = if spec.from == Rail::Check as usize && pay_released(spec.status) {
            next_check += rng.range(1, 3);
            Some(next_check)
        } else {
            None
        };
        let first_detail = next_detail;
        next_detail += spec.details.len() as i64;
        db.pay_payments.insert_with(|id| {
            pay_payment(
                w,
                &mut rng,
                PayIds {
                    id,
                    first_detail,
                    check_number,
                    batch: batch_ref,
                },
                spec,
                &employee_accounts,
            )
        });
    }
}

struct PayIds {
    id: i64,
    first_detail: i64,
    check_number: Option<i64>,
    /// Batch id, batch object, line number in the batch.
    batch: Option<(i64, Value, i64)>,
}

fn pay_payment(
    w: &World,
    rng: &mut Rng,
    ids: PayIds,
    spec: &PaySpec,
    employee_accounts: &[Value],
) -> Object {
    let id = ids.id;
    let from = &PAY_FROM[spec.from];
    let to_dp = CURRENCIES[spec.to_currency].decimals;
    let from_dp = CURRENCIES[from.currency].decimals;
    let status = spec.status;
    let released = pay_released(status) || (status == "cancelled" && rng.chance(500));

    // Dates.
    let created_rel = spec.created;
    let released_rel = released.then(|| (created_rel + rng.range(2 * HOUR, 2 * DAY)).min(-MINUTE));
    let base = released_rel.unwrap_or(created_rel);
    let mut updated_rel = match status {
        "completed_successfully" | "completed_with_errors" => base + rng.range(DAY, 4 * DAY),
        "payment_initiated" | "payment_in_progress" => base + rng.range(0, DAY),
        "cancelled" => base + rng.range(DAY, 5 * DAY),
        _ => base + rng.range(0, DAY),
    }
    .min(-MINUTE)
    .max(base);
    let completed = status.starts_with("completed");
    let exported = completed && created_rel < -90 * DAY && rng.chance(500);
    let mut last_exported = Value::Null;
    if exported {
        updated_rel = (updated_rel + rng.range(HOUR, 2 * DAY)).min(-MINUTE);
        last_exported = Value::DateTime(w.at(updated_rel));
    }
    let created = w.at(created_rel);
    let updated = w.at(updated_rel);

    // Amounts.
    let usd_rate = |c: usize| Decimal::new(CURRENCIES[c].usd_rate, 4);
    let exchange_rate = if from.currency == spec.to_currency {
        Decimal::new(1_000_000, 6)
    } else {
        let jitter = Decimal::new(10_000 + rng.range(-150, 150), 4);
        money(
            usd_rate(spec.to_currency) / usd_rate(from.currency) * jitter,
            6,
        )
    };
    let user = match spec.payee {
        Payee::Employee(u) => w.user(u),
        Payee::Supplier(_) => w.user(AP_USERS[rng.below(AP_USERS.len())]),
    };
    let mut pay_to_total = zero(to_dp);
    let mut details = Vec::with_capacity(spec.details.len());
    for (i, d) in spec.details.iter().enumerate() {
        let adjustment = zero(to_dp);
        let payment_total = d.transaction - d.discount + adjustment;
        pay_to_total += payment_total;
        let (payable_type, source_type) = match spec.payee {
            Payee::Supplier(_) => ("CoupaPay::Invoice", "InvoiceHeader"),
            Payee::Employee(_) => ("CoupaPay::ExpenseReport", "ExpenseReport"),
        };
        details.push(Value::Object(
            Object::with_capacity(16)
                .with("id", ids.first_detail + i as i64)
                .with("created-at", created)
                .with("updated-at", updated)
                .with("payment-id", id.to_string())
                .with("payable-id", d.source_id)
                .with("payable-type", payable_type)
                .with("source-transaction-id", d.source_id)
                .with("source-transaction-type", source_type)
                .with("source-transaction-reference", d.reference.clone())
                .with("transaction-total", d.transaction)
                .with("discount-total", d.discount)
                .with("adjustment-total", adjustment)
                .with("payment-total", payment_total)
                .with("currency", w.currencies[spec.to_currency].clone())
                .with("payable-allocations", Vec::<Value>::new())
                .with("created-by", user.clone())
                .with("updated-by", user.clone()),
        ));
    }
    let pay_from_total = money(pay_to_total * exchange_rate, from_dp);
    let estimated = if released {
        pay_from_total
    } else {
        money(
            pay_to_total * usd_rate(spec.to_currency) / usd_rate(from.currency),
            from_dp,
        )
    };
    let reporting_from = if from.currency == USD {
        pay_from_total
    } else {
        money(pay_from_total * usd_rate(from.currency), 2)
    };
    let reporting_to = if from.currency == USD {
        pay_from_total
    } else {
        money(pay_to_total * usd_rate(spec.to_currency), 2)
    };

    let (payee, pay_to_account) = match spec.payee {
        Payee::Supplier(s) => (
            w.suppliers[s].payee.clone(),
            w.suppliers[s].pay_to_account.clone(),
        ),
        Payee::Employee(u) => (w.user(u), employee_accounts[u].clone()),
    };
    let payee_name = payee
        .pointer(&["name"])
        .or_else(|| payee.pointer(&["fullname"]))
        .cloned()
        .unwrap_or_default();
    let digital_check = match ids.check_number {
        Some(check) => Value::Object(
            Object::with_capacity(9)
                .with("id", 9_500 + id)
                .with("created-at", w.at(released_rel.unwrap_or(created_rel)))
                .with("updated-at", updated)
                .with("check-number", check)
                .with("status", if completed { "cashed" } else { "issued" })
                .with("beneficary-name", payee_name)
                .with("payment-id", id)
                .with("created-by", w.user(1))
                .with("updated-by", w.user(1)),
        ),
        None => Value::Null,
    };
    let (batch_id, batch, line_num) = match ids.batch {
        Some((bid, b, line)) => (Value::Int(bid), b, line),
        None => (Value::Null, Value::Null, 1),
    };
    let error_text = if status == "completed_with_errors" {
        Value::from(*rng.pick(&PAY_ERRORS))
    } else {
        Value::Null
    };
    let exec_date = midnight(w.at(created_rel + rng.range(1, 3) * DAY));

    Object::with_capacity(40)
        .with("id", id)
        .with("created-at", created)
        .with("updated-at", updated)
        .with("status", status)
        .with("exported", exported)
        .with("last-exported-at", last_exported)
        .with("released-at", released_rel.map(|r| w.at(r)))
        .with("requested-execution-date", exec_date)
        .with("line-num", line_num)
        .with("payment-batch-id", batch_id)
        .with("pay-from-total", pay_from_total)
        .with("pay-to-total", pay_to_total)
        .with("estimated-pay-from-total", estimated)
        .with("reporting-pay-from-total", reporting_from)
        .with("reporting-pay-to-total", reporting_to)
        .with("exchange-rate", exchange_rate)
        .with(
            "payment-identifier",
            format!("CP-{}-{id:06}", exec_date.format("%Y%m%d")),
        )
        .with("source-name", Value::Null)
        .with("source-reference", Value::Null)
        .with("transfer-type", from.transfer)
        .with("type", "CoupaPay::Payment")
        .with(
            "external-ref-id",
            if released {
                Value::Int(880_000 + id)
            } else {
                Value::Null
            },
        )
        .with("supplier-site", Value::Null)
        .with("legal-entity-name", ENTITIES[from.entity].legal_name)
        .with("description", spec.description.clone())
        .with("error-text", error_text)
        .with("pay-from-currency", w.currencies[from.currency].clone())
        .with("pay-to-currency", w.currencies[spec.to_currency].clone())
        .with("reporting-currency", w.currencies[USD].clone())
        .with("pay-from-account", w.pay_from[spec.from].clone())
        .with("pay-to-account", pay_to_account)
        .with("payee", payee)
        .with("payment-batch", batch)
        .with("digital-check", digital_check)
        .with("payment-details", details)
        .with("created-by", user.clone())
        .with("updated-by", user)
}

// ---------------------------------------------------------------------------------------------
// Integrations

fn seed_integrations(w: &World, config: &SimConfig, db: &mut Db) {
    let mut rng = Rng::new(config.seed, STREAM_INTEGRATIONS);
    for def in &INTEGRATIONS {
        let created_rel = business_time(&mut rng, 500, 900);
        let created = w.at(created_rel);
        let updated = w.at(created_rel + rng.range(HOUR, 200 * DAY));
        let owner = w.user(def.contact_user);
        let id = db.integrations.insert_with(|id| {
            Object::with_capacity(13)
                .with("id", id)
                .with("created-at", created)
                .with("updated-at", updated)
                .with("name", def.name)
                .with("code", def.code)
                .with("business-object", def.business_object)
                .with("direction", def.direction)
                .with("end-system", def.end_system)
                .with("end-system-type", def.end_system_type)
                .with("integration-type", def.integration_type)
                .with("standard", false)
                .with("created-by", owner.clone())
                .with("updated-by", owner.clone())
        });
        let contact_at = w.at(created_rel + rng.range(MINUTE, DAY));
        db.integration_contacts.insert_with(|cid| {
            Object::with_capacity(10)
                .with("id", cid)
                .with("created-at", contact_at)
                .with("updated-at", contact_at)
                .with("contact-alert-type", def.alert_type)
                .with("contactable-type", "User")
                .with("contactable-id", w.user_ids[def.contact_user])
                .with(
                    "integration",
                    Object::with_capacity(3)
                        .with("id", id)
                        .with("code", def.code)
                        .with("name", def.name),
                )
                .with("created-by", owner.clone())
                .with("updated-by", owner.clone())
        });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn config(seed: u64, invoices: usize, pay_payments: usize) -> SimConfig {
        SimConfig {
            seed,
            invoices,
            pay_payments,
            ..SimConfig::default()
        }
    }

    fn text<'a>(o: &'a Object, path: &[&str]) -> &'a str {
        o.get(path[0])
            .and_then(|v| v.pointer(&path[1..]))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn dec(o: &Object, path: &[&str]) -> Decimal {
        match o.get(path[0]).and_then(|v| v.pointer(&path[1..])) {
            Some(Value::Decimal(d)) => *d,
            other => panic!("{path:?} is not a decimal: {other:?}"),
        }
    }

    fn int(o: &Object, path: &[&str]) -> i64 {
        match o.get(path[0]).and_then(|v| v.pointer(&path[1..])) {
            Some(Value::Int(i)) => *i,
            other => panic!("{path:?} is not an integer: {other:?}"),
        }
    }

    fn flag(o: &Object, key: &str) -> bool {
        match o.get(key) {
            Some(Value::Bool(b)) => *b,
            other => panic!("{key} is not a boolean: {other:?}"),
        }
    }

    fn items<'a>(o: &'a Object, key: &str) -> Vec<&'a Object> {
        o.get(key)
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_object)
            .collect()
    }

    fn same(a: &Db, b: &Db) -> bool {
        let tables = |db: &Db| {
            [
                db.users.rows().cloned().collect::<Vec<_>>(),
                db.suppliers.rows().cloned().collect(),
                db.invoices.rows().cloned().collect(),
                db.pay_payments.rows().cloned().collect(),
                db.integrations.rows().cloned().collect(),
                db.integration_contacts.rows().cloned().collect(),
            ]
        };
        tables(a) == tables(b)
            && a.api_user == b.api_user
            && a.invoice_custom_fields == b.invoice_custom_fields
    }

    #[test]
    fn generation_is_deterministic_and_depends_on_the_seed() {
        let a = generate(&config(7, 450, 80));
        let b = generate(&config(7, 450, 80));
        assert!(same(&a, &b), "the same seed gave different data");
        let c = generate(&config(8, 450, 80));
        assert!(!same(&a, &c), "another seed gave the same data");
        // Suppliers do not depend on how many invoices are generated.
        let d = generate(&config(7, 50, 5));
        assert!(a.suppliers.rows().eq(d.suppliers.rows()));
    }

    #[test]
    fn counts_follow_the_config() {
        let cfg = SimConfig::default();
        let db = generate(&cfg);
        assert_eq!(db.invoices.len(), cfg.invoices);
        assert_eq!(db.pay_payments.len(), cfg.pay_payments);
        assert_eq!(db.users.len(), USERS.len());
        assert_eq!(db.suppliers.len(), SUPPLIERS.len());
        assert_eq!(db.integrations.len(), INTEGRATIONS.len());
        assert_eq!(db.integration_contacts.len(), INTEGRATIONS.len());
        for i in db.integrations.rows() {
            assert!(!text(i, &["code"]).starts_with("ERP-"));
        }
        for c in db.integration_contacts.rows() {
            let integration = int(c, &["integration", "id"]);
            assert!(db.integrations.get(integration).is_some());
            assert!(db.users.get(int(c, &["contactable-id"])).is_some());
        }
        let empty = generate(&config(3, 0, 0));
        assert!(empty.invoices.is_empty() && empty.pay_payments.is_empty());
        let employees_only = generate(&config(3, 0, 10));
        assert_eq!(employees_only.pay_payments.len(), 10);
        // The API user is the first user, as the store's default says.
        assert_eq!(text(&db.api_user, &["login"]), "api-integration");
        assert_eq!(db.users.get(1), Some(&db.api_user));
    }

    #[test]
    fn every_invoice_status_is_present() {
        let all: Vec<&str> = ["approved", "voided"]
            .into_iter()
            .chain(OTHER_STATUSES.iter().map(|(s, _)| *s))
            .collect();
        assert_eq!(all.len(), 16);
        for seed in [1, 2, 3] {
            let db = generate(&config(seed, 300, 0));
            let mut counts = BTreeMap::new();
            for inv in db.invoices.rows() {
                *counts.entry(text(inv, &["status"]).to_owned()).or_insert(0) += 1;
            }
            for s in &all {
                assert!(
                    counts.get(*s).copied().unwrap_or(0) > 0,
                    "{s} missing: {counts:?}"
                );
            }
            assert_eq!(counts["approved"], 165);
            assert_eq!(counts["voided"], 24);
        }
    }

    #[test]
    fn coupa_pay_statuses_and_account_types_are_all_present() {
        let db = generate(&SimConfig::default());
        let mut statuses = BTreeSet::new();
        let mut types = BTreeMap::new();
        for p in db.pay_payments.rows() {
            statuses.insert(text(p, &["status"]).to_owned());
            *types
                .entry(text(p, &["pay-to-account", "type"]).to_owned())
                .or_insert(0) += 1;
            let error = p.get("error-text").is_some_and(|e| !e.is_null());
            assert_eq!(error, text(p, &["status"]) == "completed_with_errors");
        }
        for (s, _) in PAY_STATUSES {
            assert!(statuses.contains(s), "{s} missing");
        }
        assert_eq!(statuses.len(), PAY_STATUSES.len());
        let employee = types["CoupaPay::EmployeePaymentAccount"];
        let supplier = types["CoupaPay::SupplierPaymentAccount"];
        assert_eq!(employee + supplier, db.pay_payments.len());
        assert_eq!(employee, 9, "3 in 20");
        let banks: BTreeSet<&str> = db
            .pay_payments
            .rows()
            .map(|p| text(p, &["pay-from-account", "payment-partner", "issuing-bank"]))
            .collect();
        assert!(banks.len() >= 3, "{banks:?}");
    }

    #[test]
    fn payment_details_pay_approved_invoices_of_their_payee() {
        for cfg in [SimConfig::default(), config(11, 1500, 150)] {
            let db = generate(&cfg);
            let mut multi_currency = 0;
            let mut paid_invoices = BTreeSet::new();
            for p in db.pay_payments.rows() {
                let details = items(p, "payment-details");
                assert!((1..=3).contains(&details.len()));
                let mut sum = Decimal::ZERO;
                for d in &details {
                    assert_eq!(text(d, &["payment-id"]), int(p, &["id"]).to_string());
                    let pt = dec(d, &["payment-total"]);
                    assert_eq!(
                        pt,
                        dec(d, &["transaction-total"]) - dec(d, &["discount-total"])
                            + dec(d, &["adjustment-total"])
                    );
                    assert_eq!(
                        text(d, &["currency", "code"]),
                        text(p, &["pay-to-currency", "code"])
                    );
                    sum += pt;
                    let source = int(d, &["source-transaction-id"]);
                    if text(p, &["pay-to-account", "type"]) == "CoupaPay::SupplierPaymentAccount" {
                        assert_eq!(text(d, &["payable-type"]), "CoupaPay::Invoice");
                        assert_eq!(text(d, &["source-transaction-type"]), "InvoiceHeader");
                        let inv = db.invoices.get(source).expect("the invoice exists");
                        assert_eq!(text(inv, &["status"]), "approved");
                        assert!(!flag(inv, "exported"));
                        assert_eq!(int(inv, &["supplier", "id"]), int(p, &["payee", "id"]));
                        assert_eq!(
                            text(inv, &["invoice-number"]),
                            text(d, &["source-transaction-reference"])
                        );
                        assert_eq!(dec(inv, &["amount-due"]), dec(d, &["transaction-total"]));
                        assert_eq!(
                            text(inv, &["currency", "code"]),
                            text(d, &["currency", "code"])
                        );
                        let number = text(inv, &["supplier", "number"]);
                        assert!(!is_unknown_supplier_number(number));
                        assert_eq!(text(inv, &["supplier", "status"]), "active");
                        paid_invoices.insert(source);
                    } else {
                        assert_eq!(text(d, &["source-transaction-type"]), "ExpenseReport");
                        assert!(source >= EXPENSE_REPORT_FIRST_ID);
                        assert!(p.get("payee").and_then(|v| v.pointer(&["login"])).is_some());
                    }
                }
                assert_eq!(
                    dec(p, &["pay-to-total"]),
                    sum,
                    "payment {}",
                    int(p, &["id"])
                );
                let rate = dec(p, &["exchange-rate"]);
                assert_eq!(
                    dec(p, &["pay-from-total"]),
                    money(sum * rate, 2),
                    "payment {}",
                    int(p, &["id"])
                );
                if text(p, &["pay-from-currency", "code"]) != text(p, &["pay-to-currency", "code"])
                {
                    assert_ne!(rate, Decimal::ONE);
                    multi_currency += 1;
                } else {
                    assert_eq!(rate, Decimal::ONE);
                }
            }
            if cfg.invoices >= 1000 {
                assert!(multi_currency > 0);
                let total: usize = db
                    .pay_payments
                    .rows()
                    .filter(|p| {
                        text(p, &["pay-to-account", "type"]) == "CoupaPay::SupplierPaymentAccount"
                    })
                    .map(|p| items(p, "payment-details").len())
                    .sum();
                assert_eq!(total, paid_invoices.len(), "an invoice was paid twice");
            }
        }
    }

    #[test]
    fn invoice_amounts_are_consistent() {
        let db = generate(&config(5, 600, 0));
        for inv in db.invoices.rows() {
            let dp = u32::try_from(int(inv, &["currency", "decimals"])).expect("small");
            let lines = items(inv, "invoice-lines");
            assert!((1..=5).contains(&lines.len()));
            let mut net = Decimal::ZERO;
            let mut line_tax = Decimal::ZERO;
            for (i, l) in lines.iter().enumerate() {
                assert_eq!(int(l, &["line-num"]), i as i64 + 1);
                let total = dec(l, &["total"]);
                assert_eq!(total, money(dec(l, &["quantity"]) * dec(l, &["price"]), dp));
                assert_eq!(total.scale(), dp);
                assert_eq!(dec(l, &["accounting-total"]), total);
                net += total;
                line_tax += dec(l, &["tax-amount"]);
                assert!(!text(l, &["account", "code"]).is_empty());
            }
            let tax = dec(inv, &["tax-amount"]);
            if flag(inv, "line-level-taxation") {
                assert_eq!(tax, line_tax);
            }
            let due = net
                + dec(inv, &["shipping-amount"])
                + dec(inv, &["handling-amount"])
                + dec(inv, &["misc-amount"])
                + tax;
            assert_eq!(dec(inv, &["amount-due"]), due);
            assert_eq!(dec(inv, &["gross-total"]), due);
            assert_eq!(dec(inv, &["total-with-taxes"]), due);
            let payments = items(inv, "payments");
            let paid: Decimal = payments.iter().map(|p| dec(p, &["amount-paid"])).sum();
            if flag(inv, "paid") {
                assert_eq!(paid, due);
                assert!(flag(inv, "exported"));
            } else {
                assert!(paid < due);
            }
            if !payments.is_empty() {
                assert_eq!(text(inv, &["status"]), "approved");
            }
            if flag(inv, "exported") {
                assert!(matches!(text(inv, &["status"]), "approved" | "voided"));
                assert!(inv.get("last-exported-at").is_some_and(|v| !v.is_null()));
            }
        }
    }

    #[test]
    fn dates_are_whole_seconds_in_the_instance_offset_and_ids_follow_time() {
        let offset = FixedOffset::east_opt(3600).expect("valid offset");
        let cfg = SimConfig {
            utc_offset: offset,
            ..config(9, 400, 80)
        };
        let db = generate(&cfg);
        let epoch = offset
            .with_ymd_and_hms(2026, 10, 31, 9, 0, 0)
            .single()
            .expect("valid");
        fn walk(v: &Value, offset: FixedOffset, epoch: DateTime<FixedOffset>, n: &mut usize) {
            match v {
                Value::DateTime(d) => {
                    assert_eq!(*d.offset(), offset);
                    assert_eq!(d.timestamp_subsec_nanos(), 0);
                    *n += 1;
                    // Only requested execution dates and net due dates may lie ahead.
                    assert!(*d <= epoch + TimeDelta::days(120), "{d}");
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, offset, epoch, n)),
                Value::Object(o) => o.iter().for_each(|(_, v)| walk(v, offset, epoch, n)),
                _ => {}
            }
        }
        let mut n = 0;
        for t in [
            &db.invoices,
            &db.pay_payments,
            &db.suppliers,
            &db.integrations,
        ] {
            for row in t.rows() {
                walk(&Value::Object(row.clone()), offset, epoch, &mut n);
            }
        }
        assert!(n > 1000);
        for t in [&db.invoices, &db.pay_payments] {
            let mut last = None;
            for row in t.rows() {
                let created = row.get("created-at").and_then(Value::as_datetime);
                let updated = row.get("updated-at").and_then(Value::as_datetime);
                assert!(created <= updated && updated <= Some(epoch));
                assert!(last <= created, "ids do not follow creation time");
                last = created;
            }
        }
        for inv in db.invoices.rows() {
            let date = inv.get("invoice-date").and_then(Value::as_datetime);
            assert!(date <= inv.get("created-at").and_then(Value::as_datetime));
            assert_eq!(date.map(|d| d.num_seconds_from_midnight()), Some(0));
        }
    }

    #[test]
    fn invoice_numbers_are_unique_per_supplier_and_shared_across_two() {
        let db = generate(&SimConfig::default());
        let mut per_supplier = BTreeSet::new();
        let mut approved_by_number: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for inv in db.invoices.rows() {
            let number = text(inv, &["invoice-number"]).to_owned();
            let supplier = int(inv, &["supplier", "id"]);
            assert!(
                per_supplier.insert((supplier, number.clone())),
                "{number} twice for supplier {supplier}"
            );
            if text(inv, &["status"]) == "approved" {
                approved_by_number
                    .entry(number)
                    .or_default()
                    .insert(supplier);
            }
        }
        let shared = approved_by_number.values().filter(|s| s.len() > 1).count();
        assert!(shared >= 2, "approved invoices sharing a number: {shared}");
        // Name prefixes shared by several suppliers.
        for prefix in ["Acme", "Global", "Pacific"] {
            let n = db
                .suppliers
                .rows()
                .filter(|s| text(s, &["name"]).starts_with(prefix))
                .count();
            assert!(n >= 2, "{prefix}");
        }
    }

    #[test]
    fn the_erp_misses_suppliers_of_approved_unexported_invoices() {
        for seed in 1..=6 {
            let db = generate(&config(seed, 200, 0));
            let master = erp_supplier_master(&db);
            assert_eq!(master.len(), SUPPLIERS.len() - UNKNOWN_SUPPLIERS);
            assert_eq!(master.iter().filter(|s| !s.active).count(), 1);
            let known: BTreeMap<&str, bool> = master
                .iter()
                .map(|s| (s.number.as_str(), s.active))
                .collect();
            let (mut unknown, mut inactive) = (0, 0);
            for inv in db.invoices.rows() {
                if text(inv, &["status"]) == "approved" && !flag(inv, "exported") {
                    match known.get(text(inv, &["supplier", "number"])) {
                        None => unknown += 1,
                        Some(false) => inactive += 1,
                        Some(true) => {}
                    }
                }
            }
            assert!(unknown >= 2, "seed {seed}: {unknown}");
            assert!(inactive >= 1, "seed {seed}: {inactive}");
            for s in db.suppliers.rows() {
                let number = text(s, &["number"]);
                assert!(number.starts_with("SUP-"));
                assert_eq!(
                    is_unknown_supplier_number(number),
                    !known.contains_key(number)
                );
                let inactive_in_coupa = text(s, &["status"]) == "inactive";
                assert_eq!(known.get(number) == Some(&false), inactive_in_coupa);
            }
        }
    }

    #[test]
    fn closed_periods_hold_a_few_approved_unexported_invoices() {
        let db = generate(&config(4, 2000, 0));
        let closed = closed_periods(&db);
        assert_eq!(closed, vec![LAST_CLOSED_PERIOD.to_owned()]);
        let (mut approved, mut in_closed) = (0, 0);
        for inv in db.invoices.rows() {
            let date = inv
                .get("invoice-date")
                .and_then(Value::as_datetime)
                .expect("dated");
            let period = date.format("%Y-%m").to_string();
            let is_closed = closed.contains(&period);
            if text(inv, &["status"]) == "approved" {
                approved += 1;
                if is_closed {
                    in_closed += 1;
                    assert!(!flag(inv, "exported"));
                }
            } else {
                assert!(
                    !is_closed,
                    "only approved invoices are in the closed period"
                );
            }
        }
        let share = f64::from(in_closed) / f64::from(approved);
        assert!((0.02..0.04).contains(&share), "{in_closed} of {approved}");
        assert_eq!(closed_periods(&Db::default()), closed);
    }

    #[test]
    fn custom_fields_are_declared() {
        let db = generate(&SimConfig::default());
        let mut used = BTreeSet::new();
        for inv in db.invoices.rows() {
            let cf = inv
                .get("custom-fields")
                .and_then(Value::as_object)
                .expect("custom fields");
            used.extend(cf.keys().map(str::to_owned));
            assert!(cf.get("cf-erp-invoice-number").is_some_and(Value::is_null));
            assert!(cf.get("cf-integration-status").is_some_and(Value::is_null));
        }
        let declared: BTreeSet<String> = db.invoice_custom_fields.iter().cloned().collect();
        assert_eq!(used, declared);
    }

    #[test]
    fn invoices_render_to_several_kilobytes_of_json() {
        let db = generate(&SimConfig::default());
        let sizes: Vec<usize> = db
            .invoices
            .rows()
            .map(|r| coupa_doc::json::to_vec(&Value::Object(r.clone())).len())
            .collect();
        let min = sizes.iter().min().copied().unwrap_or_default();
        let avg = sizes.iter().sum::<usize>() / sizes.len().max(1);
        assert!(min > 3 * 1024, "smallest invoice is {min} bytes");
        assert!(avg > 5 * 1024, "average invoice is {avg} bytes");
        let pay = db
            .pay_payments
            .rows()
            .map(|r| coupa_doc::json::to_vec(&Value::Object(r.clone())).len())
            .min()
            .unwrap_or_default();
        assert!(pay > 4 * 1024, "smallest payment is {pay} bytes");
        eprintln!("invoice JSON bytes: min {min}, avg {avg}; payment min {pay}");
    }
}
