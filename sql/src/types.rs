//! The type mapping: CQL → Arrow → YSQL, in one place.
//!
//! [`CqlType`] is parsed from the type strings of `system_schema.columns` (`int`,
//! `frozen<map<text, list<int>>>`, `vector<float, 3>`, a UDT's name), so the mapping does not
//! depend on any driver. The Cassandra decoder, DDL generation and dry-run checks all read
//! [`CqlType::arrow_type`] and [`CqlType::ysql_type`], so they cannot disagree.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};

use crate::error::{Result, SqlError};

/// Field metadata key carrying the CQL type a column came from (e.g. `decimal`, `timeuuid`).
pub const CQL_TYPE_METADATA_KEY: &str = "ferry.cql_type";
/// Arrow's canonical extension name key and the UUID extension.
pub const ARROW_EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// The canonical Arrow UUID extension type name.
pub const ARROW_UUID_EXTENSION: &str = "arrow.uuid";

/// CQL's non-parametric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeType {
    Ascii,
    Text,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Counter,
    Varint,
    Decimal,
    Float,
    Double,
    Boolean,
    Timestamp,
    Date,
    Time,
    Duration,
    Uuid,
    TimeUuid,
    Inet,
    Blob,
}

impl NativeType {
    fn parse(name: &str) -> Option<Self> {
        use NativeType::*;
        Some(match name {
            "ascii" => Ascii,
            "text" | "varchar" => Text,
            "tinyint" => TinyInt,
            "smallint" => SmallInt,
            "int" => Int,
            "bigint" => BigInt,
            "counter" => Counter,
            "varint" => Varint,
            "decimal" => Decimal,
            "float" => Float,
            "double" => Double,
            "boolean" => Boolean,
            "timestamp" => Timestamp,
            "date" => Date,
            "time" => Time,
            "duration" => Duration,
            "uuid" => Uuid,
            "timeuuid" => TimeUuid,
            "inet" => Inet,
            "blob" => Blob,
            _ => return None,
        })
    }

    /// The CQL spelling of this type.
    pub fn cql_name(self) -> &'static str {
        use NativeType::*;
        match self {
            Ascii => "ascii",
            Text => "text",
            TinyInt => "tinyint",
            SmallInt => "smallint",
            Int => "int",
            BigInt => "bigint",
            Counter => "counter",
            Varint => "varint",
            Decimal => "decimal",
            Float => "float",
            Double => "double",
            Boolean => "boolean",
            Timestamp => "timestamp",
            Date => "date",
            Time => "time",
            Duration => "duration",
            Uuid => "uuid",
            TimeUuid => "timeuuid",
            Inet => "inet",
            Blob => "blob",
        }
    }
}

/// A CQL column type, as `system_schema` spells it, with UDTs resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CqlType {
    Native(NativeType),
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
    Tuple(Vec<CqlType>),
    /// A user-defined type with its fields in declaration order.
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, CqlType)>,
    },
    Vector(Box<CqlType>, u16),
    /// `frozen<T>`: same values as `T`, kept so DDL and docs can say it.
    Frozen(Box<CqlType>),
}

/// Looks up a UDT's fields by name while parsing (from `system_schema.types`).
pub trait UdtResolver {
    /// The fields of `keyspace.name`, or `None` when there is no such type.
    fn resolve(&self, keyspace: &str, name: &str) -> Option<Vec<(String, String)>>;
}

/// A resolver for schemas without UDTs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUdts;

impl UdtResolver for NoUdts {
    fn resolve(&self, _: &str, _: &str) -> Option<Vec<(String, String)>> {
        None
    }
}

impl CqlType {
    /// Parses a `system_schema.columns.type` string. UDT names are resolved in `keyspace`.
    pub fn parse(text: &str, keyspace: &str, udts: &dyn UdtResolver) -> Result<Self> {
        let mut parser = Parser {
            text,
            pos: 0,
            keyspace,
            udts,
        };
        let ty = parser.parse_type(0)?;
        parser.skip_ws();
        if parser.pos != text.len() {
            return Err(parser.error("trailing characters"));
        }
        Ok(ty)
    }

    /// The type without `frozen<…>` wrappers.
    pub fn unfrozen(&self) -> &CqlType {
        match self {
            CqlType::Frozen(inner) => inner.unfrozen(),
            other => other,
        }
    }

    /// The Arrow type Ferry decodes this CQL type into.
    pub fn arrow_type(&self) -> DataType {
        use NativeType::*;
        match self.unfrozen() {
            CqlType::Native(n) => match n {
                Ascii | Text | Inet => DataType::Utf8,
                // Lossless: the canonical decimal string; numeric parses it exactly.
                Varint | Decimal => DataType::Utf8,
                TinyInt => DataType::Int8,
                SmallInt => DataType::Int16,
                Int => DataType::Int32,
                BigInt | Counter => DataType::Int64,
                Float => DataType::Float32,
                Double => DataType::Float64,
                Boolean => DataType::Boolean,
                Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC"))),
                Date => DataType::Date32,
                Time => DataType::Time64(TimeUnit::Nanosecond),
                Duration => DataType::Interval(IntervalUnit::MonthDayNano),
                Uuid | TimeUuid => DataType::FixedSizeBinary(16),
                Blob => DataType::Binary,
            },
            CqlType::List(el) | CqlType::Set(el) => {
                DataType::List(Arc::new(el.arrow_field("item", true)))
            }
            CqlType::Map(k, v) => {
                let entries = Field::new_struct(
                    "entries",
                    vec![k.arrow_field("key", false), v.arrow_field("value", true)],
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
            CqlType::Tuple(items) => DataType::Struct(Fields::from(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| t.arrow_field(&format!("f{i}"), true))
                    .collect::<Vec<_>>(),
            )),
            CqlType::Udt { fields, .. } => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|(name, t)| t.arrow_field(name, true))
                    .collect::<Vec<_>>(),
            )),
            CqlType::Vector(el, n) => {
                DataType::FixedSizeList(Arc::new(el.arrow_field("item", true)), i32::from(*n))
            }
            CqlType::Frozen(_) => unreachable!("unfrozen() removed every Frozen"),
        }
    }

    /// An Arrow field of this type, tagged with the CQL type it came from.
    pub fn arrow_field(&self, name: &str, nullable: bool) -> Field {
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(CQL_TYPE_METADATA_KEY.to_string(), self.to_string());
        if matches!(
            self.unfrozen(),
            CqlType::Native(NativeType::Uuid | NativeType::TimeUuid)
        ) {
            metadata.insert(
                ARROW_EXTENSION_NAME_KEY.to_string(),
                ARROW_UUID_EXTENSION.to_string(),
            );
        }
        Field::new(name, self.arrow_type(), nullable).with_metadata(metadata)
    }

    /// The YSQL column type `ferry schema` generates for this CQL type.
    pub fn ysql_type(&self) -> String {
        use NativeType::*;
        match self.unfrozen() {
            CqlType::Native(n) => match n {
                Ascii | Text => "text",
                TinyInt | SmallInt => "smallint",
                Int => "integer",
                BigInt | Counter => "bigint",
                Varint | Decimal => "numeric",
                Float => "real",
                Double => "double precision",
                Boolean => "boolean",
                Timestamp => "timestamptz",
                Date => "date",
                Time => "time",
                Duration => "interval",
                Uuid | TimeUuid => "uuid",
                Inet => "inet",
                Blob => "bytea",
            }
            .to_string(),
            CqlType::List(el) | CqlType::Set(el) => match el.unfrozen() {
                CqlType::Native(_) => format!("{}[]", el.ysql_type()),
                _ => "jsonb".to_string(),
            },
            CqlType::Vector(el, _) => match el.unfrozen() {
                CqlType::Native(_) => format!("{}[]", el.ysql_type()),
                _ => "jsonb".to_string(),
            },
            CqlType::Map(..) | CqlType::Tuple(_) | CqlType::Udt { .. } => "jsonb".to_string(),
            CqlType::Frozen(_) => unreachable!("unfrozen() removed every Frozen"),
        }
    }
}

impl fmt::Display for CqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CqlType::Native(n) => f.write_str(n.cql_name()),
            CqlType::List(t) => write!(f, "list<{t}>"),
            CqlType::Set(t) => write!(f, "set<{t}>"),
            CqlType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            CqlType::Tuple(items) => {
                f.write_str("tuple<")?;
                for (i, t) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(">")
            }
            CqlType::Udt { name, .. } => f.write_str(name),
            CqlType::Vector(t, n) => write!(f, "vector<{t}, {n}>"),
            CqlType::Frozen(t) => write!(f, "frozen<{t}>"),
        }
    }
}

/// Nesting deeper than this is refused, so a hostile schema cannot overflow the stack.
const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    keyspace: &'a str,
    udts: &'a dyn UdtResolver,
}

impl Parser<'_> {
    fn error(&self, reason: &str) -> SqlError {
        SqlError::CqlTypeParse {
            text: self.text.to_string(),
            reason: format!("{reason} at offset {}", self.pos),
        }
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }

    fn ident(&mut self) -> Result<&str> {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| self.error("unterminated quoted name"))?;
            self.pos += end + 2;
            return Ok(&quoted[..end]);
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a type name"));
        }
        self.pos += len;
        Ok(&rest[..len])
    }

    fn expect(&mut self, c: char) -> Result<()> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn peek(&mut self, c: char) -> bool {
        self.skip_ws();
        self.text[self.pos..].starts_with(c)
    }

    fn params(&mut self, depth: usize) -> Result<Vec<CqlType>> {
        self.expect('<')?;
        let mut out = vec![self.parse_type(depth + 1)?];
        while self.peek(',') {
            self.pos += 1;
            out.push(self.parse_type(depth + 1)?);
        }
        self.expect('>')?;
        Ok(out)
    }

    fn parse_type(&mut self, depth: usize) -> Result<CqlType> {
        if depth > MAX_DEPTH {
            return Err(self.error("type nested too deeply"));
        }
        let name = self.ident()?.to_ascii_lowercase();
        if let Some(native) = NativeType::parse(&name) {
            return Ok(CqlType::Native(native));
        }
        let one = |mut v: Vec<CqlType>, p: &Self| -> Result<Box<CqlType>> {
            match v.len() {
                1 => Ok(Box::new(v.remove(0))),
                _ => Err(p.error("expected one type parameter")),
            }
        };
        match name.as_str() {
            "frozen" => {
                let p = self.params(depth)?;
                Ok(CqlType::Frozen(one(p, self)?))
            }
            "list" => {
                let p = self.params(depth)?;
                Ok(CqlType::List(one(p, self)?))
            }
            "set" => {
                let p = self.params(depth)?;
                Ok(CqlType::Set(one(p, self)?))
            }
            "map" => {
                let mut p = self.params(depth)?;
                if p.len() != 2 {
                    return Err(self.error("map takes two type parameters"));
                }
                let v = p.pop().expect("len checked");
                let k = p.pop().expect("len checked");
                Ok(CqlType::Map(Box::new(k), Box::new(v)))
            }
            "tuple" => Ok(CqlType::Tuple(self.params(depth)?)),
            "vector" => {
                self.expect('<')?;
                let el = self.parse_type(depth + 1)?;
                self.expect(',')?;
                self.skip_ws();
                let rest = &self.text[self.pos..];
                let len = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let n: u16 = rest[..len]
                    .parse()
                    .map_err(|_| self.error("expected a vector dimension"))?;
                self.pos += len;
                self.expect('>')?;
                Ok(CqlType::Vector(Box::new(el), n))
            }
            udt => {
                let (ks, name) = match udt.split_once('.') {
                    Some((ks, name)) => (ks.to_string(), name.to_string()),
                    None => (self.keyspace.to_string(), udt.to_string()),
                };
                let fields = self
                    .udts
                    .resolve(&ks, &name)
                    .ok_or_else(|| SqlError::UnsupportedCqlType(udt.to_string()))?;
                let fields = fields
                    .into_iter()
                    .map(|(field, ty)| {
                        let mut inner = Parser {
                            text: &ty,
                            pos: 0,
                            keyspace: &ks,
                            udts: self.udts,
                        };
                        let t = inner.parse_type(depth + 1)?;
                        Ok((field, t))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(CqlType::Udt {
                    keyspace: ks,
                    name,
                    fields,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> CqlType {
        CqlType::parse(s, "ks", &NoUdts).expect("parses")
    }

    #[test]
    fn parses_nested_types_and_prints_them_back() {
        for s in [
            "int",
            "list<text>",
            "frozen<map<text, list<int>>>",
            "tuple<int, text, frozen<set<uuid>>>",
            "vector<float, 3>",
        ] {
            assert_eq!(parse(s).to_string(), s);
        }
        assert_eq!(parse("varchar"), CqlType::Native(NativeType::Text));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        let err = CqlType::parse("map<int>", "ks", &NoUdts).expect_err("bad map");
        assert!(err.to_string().contains("two type parameters"), "{err}");
        let err = CqlType::parse("list<int", "ks", &NoUdts).expect_err("unterminated");
        assert!(err.to_string().contains("expected `>`"), "{err}");
        let err = CqlType::parse("address", "ks", &NoUdts).expect_err("unknown udt");
        assert!(err.to_string().contains("address"), "{err}");
    }

    #[test]
    fn resolves_udts() {
        struct One;
        impl UdtResolver for One {
            fn resolve(&self, ks: &str, name: &str) -> Option<Vec<(String, String)>> {
                (ks == "ks" && name == "address").then(|| {
                    vec![
                        ("street".into(), "text".into()),
                        ("zip".into(), "int".into()),
                    ]
                })
            }
        }
        let t = CqlType::parse("frozen<address>", "ks", &One).expect("parses");
        let DataType::Struct(fields) = t.arrow_type() else {
            panic!("a UDT is a struct");
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].data_type(), &DataType::Int32);
        assert_eq!(t.ysql_type(), "jsonb");
    }

    #[test]
    fn only_vectors_of_scalars_are_arrays() {
        assert_eq!(parse("vector<float, 3>").ysql_type(), "real[]");
        assert_eq!(parse("vector<frozen<list<int>>, 2>").ysql_type(), "jsonb");
    }

    #[test]
    fn maps_simple_types_to_arrow_and_ysql() {
        let cases = [
            ("int", DataType::Int32, "integer"),
            ("bigint", DataType::Int64, "bigint"),
            ("text", DataType::Utf8, "text"),
            ("boolean", DataType::Boolean, "boolean"),
            ("double", DataType::Float64, "double precision"),
            (
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                "timestamptz",
            ),
            ("uuid", DataType::FixedSizeBinary(16), "uuid"),
            (
                "list<int>",
                DataType::new_list(DataType::Int32, true),
                "integer[]",
            ),
        ];
        for (cql, arrow, ysql) in cases {
            let t = parse(cql);
            assert_eq!(t.ysql_type(), ysql, "{cql}");
            match (&t.arrow_type(), &arrow) {
                (DataType::List(a), DataType::List(b)) => assert_eq!(a.data_type(), b.data_type()),
                (a, b) => assert_eq!(a, b, "{cql}"),
            }
        }
        let f = parse("timeuuid").arrow_field("id", false);
        assert_eq!(
            f.metadata()
                .get(ARROW_EXTENSION_NAME_KEY)
                .map(String::as_str),
            Some(ARROW_UUID_EXTENSION)
        );
    }
}
