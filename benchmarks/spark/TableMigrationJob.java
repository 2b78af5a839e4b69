// The Spark anchor of `ferry-bench e2e`: the design of seed-spark-parallelism.md, which Ferry
// replaces. A Cassandra table is read through spark-cassandra-connector into a DataFrame of
// `spark.default.parallelism` partitions; `foreachPartition` opens one JDBC connection per
// partition and streams the partition's rows as CSV through `CopyManager.copyIn("COPY … FROM
// STDIN")` in one transaction, then commits and closes, like the seed's TableMigrationJob and
// CopyWriter. Written in Java rather than the seed's Scala: the same Spark API and the same JVM
// code on the executors, compiled by the JDK alone (scripts/spark.sh) against pyspark's jars.
//
// Usage (scripts/spark.sh run …): TableMigrationJob KEYSPACE.TABLE SCHEMA.TABLE
// Target: FERRY_SPARK_JDBC_URL (jdbc:postgresql://host:port/db), FERRY_SPARK_PGUSER,
// FERRY_SPARK_PGPASSWORD, in the environment so that `ps` does not show them. Cassandra: the
// usual spark.cassandra.connection.* settings. Prints one JSON line on stdout at the end.

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Properties;

import org.apache.spark.api.java.function.ForeachPartitionFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.util.LongAccumulator;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyIn;
import org.postgresql.copy.CopyManager;

public final class TableMigrationJob {
    private TableMigrationJob() {}

    /** One COPY FROM STDIN stream on one connection: rows are buffered and sent in 64 KiB chunks. */
    static final class CopyWriter {
        private static final int CHUNK = 64 * 1024;
        private final CopyIn copyIn;
        private byte[] buffer = new byte[CHUNK * 2];
        private int length;
        private long sent;

        CopyWriter(Connection conn, String copySql) throws SQLException {
            CopyManager manager = conn.unwrap(PGConnection.class).getCopyAPI();
            this.copyIn = manager.copyIn(copySql);
        }

        void writeRow(CharSequence csvRow) throws SQLException {
            byte[] bytes = csvRow.toString().getBytes(StandardCharsets.UTF_8);
            if (length + bytes.length > buffer.length) {
                flush();
                if (bytes.length > buffer.length) {
                    buffer = new byte[bytes.length * 2];
                }
            }
            System.arraycopy(bytes, 0, buffer, length, bytes.length);
            length += bytes.length;
            if (length >= CHUNK) {
                flush();
            }
        }

        private void flush() throws SQLException {
            if (length > 0) {
                copyIn.writeToCopy(buffer, 0, length);
                sent += length;
                length = 0;
            }
        }

        /** Ends the COPY; returns the rows the server says it copied. */
        long endCopy() throws SQLException {
            flush();
            return copyIn.endCopy();
        }

        /** The bytes of COPY data sent so far. */
        long bytes() {
            return sent;
        }

        void cancel() {
            try {
                if (copyIn.isActive()) {
                    copyIn.cancelCopy();
                }
            } catch (SQLException ignored) {
                // The connection is closed next, which ends the COPY anyway.
            }
        }
    }

    /** Appends one value in PostgreSQL's CSV format; NULL is an empty unquoted field. */
    static void appendCsv(StringBuilder out, Row r, int i, DataType type) {
        if (r.isNullAt(i)) {
            return;
        }
        if (type.equals(DataTypes.StringType)) {
            String s = r.getString(i);
            out.append('"');
            for (int k = 0; k < s.length(); k++) {
                char c = s.charAt(k);
                if (c == '"') {
                    out.append('"');
                }
                out.append(c);
            }
            out.append('"');
        } else if (type.equals(DataTypes.BinaryType)) {
            byte[] b = (byte[]) r.get(i);
            out.append("\\x");
            for (byte x : b) {
                out.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
            }
        } else if (type.equals(DataTypes.TimestampType)) {
            out.append(((Timestamp) r.get(i)).toInstant().toString());
        } else if (type instanceof DecimalType) {
            out.append(((BigDecimal) r.get(i)).toPlainString());
        } else {
            // Numbers, booleans and dates: their Java strings are PostgreSQL input syntax.
            out.append(r.get(i));
        }
    }

    static String quoteIdent(String name) {
        return '"' + name.replace("\"", "\"\"") + '"';
    }

    static String quoteQualified(String name) {
        String[] parts = name.split("\\.", 2);
        return parts.length == 2 ? quoteIdent(parts[0]) + "." + quoteIdent(parts[1]) : quoteIdent(name);
    }

    /** This JVM's peak resident set size in MB (Linux VmHWM), 0 when unknown. */
    static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
                }
            }
        } catch (IOException | NumberFormatException ignored) {
            // Not Linux: no figure.
        }
        return 0;
    }

    static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException(name + " is not set (scripts/spark.sh run sets it from its arguments)");
        }
        return value;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !args[0].contains(".")) {
            System.err.println("usage: TableMigrationJob KEYSPACE.TABLE SCHEMA.TABLE");
            System.exit(2);
        }
        String[] source = args[0].split("\\.", 2);
        String target = args[1];
        String jdbcUrl = env("FERRY_SPARK_JDBC_URL");
        String user = env("FERRY_SPARK_PGUSER");
        String password = System.getenv().getOrDefault("FERRY_SPARK_PGPASSWORD", "");

        long launched = System.nanoTime();
        SparkSession spark = SparkSession.builder().appName("ferry-bench spark anchor").getOrCreate();
        int parallelism = spark.sparkContext().defaultParallelism();
        LongAccumulator copied = spark.sparkContext().longAccumulator("rows copied");
        LongAccumulator copyBytes = spark.sparkContext().longAccumulator("COPY bytes sent");
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

        // Timed from here: the read's planning (table metadata, token ranges), the scan, the
        // shuffle into `parallelism` partitions, and every partition's COPY and commit. The CPU
        // time is the whole JVM's over the same span (driver and executor threads alike in local
        // mode).
        long started = System.nanoTime();
        long cpuStarted = os.getProcessCpuTime();
        Dataset<Row> df = spark.read()
                .format("org.apache.spark.sql.cassandra")
                .option("keyspace", source[0])
                .option("table", source[1])
                .load();
        StructField[] fields = df.schema().fields();
        List<String> columns = new ArrayList<>();
        DataType[] types = new DataType[fields.length];
        for (int i = 0; i < fields.length; i++) {
            columns.add(quoteIdent(fields[i].name()));
            types[i] = fields[i].dataType();
        }
        String copySql = "COPY " + quoteQualified(target) + " (" + String.join(", ", columns)
                + ") FROM STDIN WITH (FORMAT csv)";

        // The seed's P partitions, each one connection and one COPY stream. FERRY_SPARK_REPARTITION=0
        // keeps the connector's own partitions instead (about 2P + 2 of them, P at a time): no
        // shuffle, but more connections than P over the run.
        boolean repartition = !"0".equals(System.getenv("FERRY_SPARK_REPARTITION"));
        Dataset<Row> partitioned = repartition ? df.repartition(parallelism) : df;
        partitioned.foreachPartition((ForeachPartitionFunction<Row>) (Iterator<Row> partition) -> {
            Properties props = new Properties();
            props.setProperty("user", user);
            props.setProperty("password", password);
            // One connection per partition, as in the seed: no pool.
            try (Connection conn = DriverManager.getConnection(jdbcUrl, props)) {
                conn.setAutoCommit(false);
                CopyWriter writer = new CopyWriter(conn, copySql);
                StringBuilder row = new StringBuilder(256);
                try {
                    while (partition.hasNext()) {
                        Row r = partition.next();
                        row.setLength(0);
                        for (int i = 0; i < types.length; i++) {
                            if (i > 0) {
                                row.append(',');
                            }
                            appendCsv(row, r, i, types[i]);
                        }
                        row.append('\n');
                        writer.writeRow(row);
                    }
                    long rows = writer.endCopy();
                    conn.commit();
                    copied.add(rows);
                    copyBytes.add(writer.bytes());
                } catch (Exception e) {
                    writer.cancel();
                    conn.rollback();
                    throw e;
                }
            }
        });
        double elapsed = (System.nanoTime() - started) / 1e9;
        double cpu = (os.getProcessCpuTime() - cpuStarted) / 1e9;
        // Planned again, outside the timed span, only to report them.
        int readPartitions = df.rdd().getNumPartitions();
        int partitions = partitioned.rdd().getNumPartitions();
        double session = (started - launched) / 1e9;

        String json = String.format(java.util.Locale.ROOT,
                "{\"rows\":%d,\"copy_bytes\":%d,\"elapsed_s\":%.6f,\"cpu_s\":%.3f,\"session_s\":%.6f,"
                        + "\"parallelism\":%d,\"repartitioned\":%b,\"partitions\":%d,\"read_partitions\":%d,\"master\":\"%s\","
                        + "\"spark\":\"%s\",\"connector\":\"%s\",\"pgjdbc\":\"%s\",\"peak_rss_mb\":%.1f}",
                copied.value(), copyBytes.value(), elapsed, cpu, session, parallelism, repartition,
                partitions, readPartitions,
                spark.sparkContext().master(), spark.version(),
                versionOf("com.datastax.spark.connector.CassandraRow"),
                org.postgresql.util.DriverInfo.DRIVER_VERSION, peakRssMb());
        spark.stop();
        System.out.println(json);
    }

    /** The Implementation-Version of the jar holding `className`, or "?". */
    static String versionOf(String className) {
        try {
            Package p = Class.forName(className).getPackage();
            String v = p == null ? null : p.getImplementationVersion();
            return v == null ? "?" : v;
        } catch (ClassNotFoundException e) {
            return "?";
        }
    }
}
