//! The functions transforms and queries may call on Cassandra data, registered in every session
//! Ferry plans with ([`register`]). They are CQL's native functions under snake_case names,
//! working on the Arrow types of the type mapping ([`crate::types`]): a `uuid`/`timeuuid` is a
//! FixedSizeBinary(16), a `blob` a Binary, a `timestamp` a Timestamp(ms, UTC), a `duration` an
//! Interval(MonthDayNano), `varint`/`decimal`/`inet` their canonical text.
//!
//! - [`token`]: `token(k1, …)`, the partition token as Cassandra computes it.
//! - [`uuid`]: `timeuuid_to_timestamp`, `timeuuid_to_unix_ms`, `timeuuid_to_date`,
//!   `uuid_version`, `uuid_to_text`, `text_to_uuid`.
//! - [`blob`]: `blob_to_text`, `blob_to_text_lossy`, `text_to_blob`, `blob_to_hex`, `hex_to_blob`,
//!   and `blob_to_<type>` / `<type>_to_blob` for the fixed-width CQL types.
//! - [`json`]: `cql_to_json`, `duration_to_text`.
//!
//! Every function is strict (a NULL argument gives NULL), works on whole arrays, and fails with
//! an error naming itself when a value is not what it takes; `docs/transforms.md` is the
//! reference.

pub mod blob;
pub mod json;
pub mod token;
pub mod uuid;

use std::fmt::Debug;
use std::hash::Hash;

use arrow::array::{Array, ArrayRef, AsArray, new_null_array};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

pub use token::{TOKEN, TokenUdf, murmur3_token};

/// Registers Ferry's UDFs in `ctx`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(TokenUdf::new()));
    for udf in uuid::udfs()
        .into_iter()
        .chain(blob::udfs())
        .chain(json::udfs())
    {
        ctx.register_udf(udf);
    }
}

/// What a one-argument function does to a whole array. `Udf<K>` turns it into a DataFusion UDF.
pub(crate) trait Kernel: Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// The SQL name.
    fn name(&self) -> &'static str;
    /// The argument types it takes (DataFusion coerces or refuses the rest at plan time).
    fn signature(&self) -> Signature;
    /// The type it returns, given the argument's type.
    fn returns(&self, arg: &DataType) -> Result<DataType>;
    /// Computes the function over `array` (never of type Null), whose field is `field`. A NULL
    /// value gives NULL.
    fn eval(&self, array: &ArrayRef, field: &Field) -> Result<ArrayRef>;
}

/// A one-argument UDF made from a [`Kernel`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Udf<K> {
    kernel: K,
    signature: Signature,
}

impl<K: Kernel> Udf<K> {
    pub(crate) fn new(kernel: K) -> Self {
        let signature = kernel.signature();
        Self { kernel, signature }
    }

    pub(crate) fn udf(kernel: K) -> ScalarUDF {
        ScalarUDF::from(Self::new(kernel))
    }
}

impl<K: Kernel> ScalarUDFImpl for Udf<K> {
    fn name(&self) -> &str {
        self.kernel.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [arg] => self.kernel.returns(arg),
            _ => datafusion::common::plan_err!("{}() takes one argument", self.kernel.name()),
        }
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (Some(arg), Some(field)) = (args.args.first(), args.arg_fields.first()) else {
            return exec_err!("{}() takes one argument", self.kernel.name());
        };
        let returns = args.return_type();
        let eval = |array: &ArrayRef| -> Result<ArrayRef> {
            if array.data_type() == &DataType::Null {
                return Ok(new_null_array(returns, array.len()));
            }
            let out = self.kernel.eval(array, field)?;
            debug_assert_eq!(out.data_type(), returns, "{}", self.kernel.name());
            Ok(out)
        };
        match arg {
            ColumnarValue::Array(array) => Ok(ColumnarValue::Array(eval(array)?)),
            ColumnarValue::Scalar(scalar) => {
                let out = eval(&scalar.to_array_of_size(1)?)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
            }
        }
    }
}

/// Any string array's values, whatever its offsets or view layout.
pub(crate) enum Strings<'a> {
    Utf8(&'a arrow::array::StringArray),
    Large(&'a arrow::array::LargeStringArray),
    View(&'a arrow::array::StringViewArray),
}

impl<'a> Strings<'a> {
    pub(crate) fn of(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Utf8 => Self::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Self::Large(array.as_string::<i64>()),
            DataType::Utf8View => Self::View(array.as_string_view()),
            _ => return None,
        })
    }

    /// Value `i`, or `None` when it is NULL.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Self::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Self::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Self::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Any binary array's values: Binary, LargeBinary, BinaryView or FixedSizeBinary.
pub(crate) enum Bytes<'a> {
    Binary(&'a arrow::array::BinaryArray),
    Large(&'a arrow::array::LargeBinaryArray),
    View(&'a arrow::array::BinaryViewArray),
    Fixed(&'a arrow::array::FixedSizeBinaryArray),
}

impl<'a> Bytes<'a> {
    pub(crate) fn of(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Binary => Self::Binary(array.as_binary::<i32>()),
            DataType::LargeBinary => Self::Large(array.as_binary::<i64>()),
            DataType::BinaryView => Self::View(array.as_binary_view()),
            DataType::FixedSizeBinary(_) => Self::Fixed(array.as_fixed_size_binary()),
            _ => return None,
        })
    }

    /// Value `i`, or `None` when it is NULL.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            Self::Binary(a) => a.is_valid(i).then(|| a.value(i)),
            Self::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Self::View(a) => a.is_valid(i).then(|| a.value(i)),
            Self::Fixed(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// `array` as strings, or an error naming `function` (the signature should have prevented it).
pub(crate) fn strings<'a>(function: &str, array: &'a dyn Array) -> Result<Strings<'a>> {
    match Strings::of(array) {
        Some(s) => Ok(s),
        None => exec_err!("{function}() takes text, not {}", array.data_type()),
    }
}

/// `array` as bytes, or an error naming `function` (the signature should have prevented it).
pub(crate) fn bytes<'a>(function: &str, array: &'a dyn Array) -> Result<Bytes<'a>> {
    match Bytes::of(array) {
        Some(b) => Ok(b),
        None => exec_err!("{function}() takes a blob, not {}", array.data_type()),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex digits.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Appends a UUID's canonical form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase.
pub(crate) fn push_uuid(out: &mut String, bytes: &[u8]) {
    for (k, chunk) in [
        &bytes[0..4],
        &bytes[4..6],
        &bytes[6..8],
        &bytes[8..10],
        &bytes[10..16],
    ]
    .into_iter()
    .enumerate()
    {
        if k > 0 {
            out.push('-');
        }
        push_hex(out, chunk);
    }
}

/// At most 64 characters of `s`, for error messages that quote a value.
pub(crate) fn preview(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((end, _)) => format!("{:?}…", &s[..end]),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Runs SQL over a one-column table in a session with Ferry's UDFs.

    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// The single column of `SELECT <expr> FROM source` over `source(v)` holding `values`,
    /// whose field is `field`; `Err` carries the error's text.
    pub async fn eval(expr: &str, field: Field, values: ArrayRef) -> Result<ArrayRef, String> {
        let schema = Arc::new(Schema::new(vec![field]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![values]).map_err(|e| e.to_string())?;
        let ctx = SessionContext::new();
        super::register(&ctx);
        let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| e.to_string())?;
        ctx.register_table("source", Arc::new(table))
            .map_err(|e| e.to_string())?;
        let batches = ctx
            .sql(&format!("SELECT {expr} AS out FROM source"))
            .await
            .map_err(|e| e.strip_backtrace())?
            .collect()
            .await
            .map_err(|e| e.strip_backtrace())?;
        let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
        let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
        arrow::compute::concat(&refs).map_err(|e| e.to_string())
    }

    /// The value of a constant expression, `SELECT <expr>` (exercises the scalar path).
    pub async fn scalar(expr: &str) -> Result<datafusion::common::ScalarValue, String> {
        let ctx = SessionContext::new();
        super::register(&ctx);
        let batches = ctx
            .sql(&format!("SELECT {expr} AS out"))
            .await
            .map_err(|e| e.strip_backtrace())?
            .collect()
            .await
            .map_err(|e| e.strip_backtrace())?;
        datafusion::common::ScalarValue::try_from_array(batches[0].column(0), 0)
            .map_err(|e| e.strip_backtrace())
    }
}
