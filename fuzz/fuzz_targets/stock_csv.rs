//! `stock.csv`: a file that parses is exactly the file its lines format to, and formatting
//! parses back to the same lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery::snapshot::{check_pools, parse_stock, stock_csv, PoolIndex};

fuzz_target!(|data: &[u8]| {
    match parse_stock(data) {
        Ok(stock) => {
            assert_eq!(
                stock_csv(&stock),
                data,
                "parse then format is not the identity"
            );
            let index = PoolIndex::new(&stock);
            for (i, s) in stock.iter().enumerate() {
                assert_eq!(index.get(&s.pharmacy_id, &s.product_id), Some(i as u32));
            }
            assert_eq!(check_pools(&[], &stock), Ok(()));
        }
        Err(e) => assert!(e.line() >= 1, "{e}"),
    }
});
