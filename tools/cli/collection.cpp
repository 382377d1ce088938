// Collections in the catalog (collection.h).
#include "collection.h"

#include <cstdlib>

namespace vecext::cli {

bool LookupCollection(PGconn* c, const std::string& schema, const std::string& name, Collection* out) {
  Result cols = ExecParams(c,
                           "SELECT a.attname::text, t.typname::text, a.atttypmod "
                           "FROM pg_catalog.pg_class r "
                           "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
                           "JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid "
                           "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
                           "WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind IN ('r', 'p') "
                           "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                           {schema, name}, "reading the catalog");
  const int n = PQntuples(cols.get());
  if (n == 0) return false;
  out->schema = schema;
  out->name = name;
  out->table = QuoteIdent(schema) + "." + QuoteIdent(name);
  bool id = false, embedding = false, metadata = false;
  out->has_document = false;
  for (int i = 0; i < n; i++) {
    const std::string col = PQgetvalue(cols.get(), i, 0);
    const std::string type = PQgetvalue(cols.get(), i, 1);
    const int typmod = std::atoi(PQgetvalue(cols.get(), i, 2));
    std::string bad;
    if (col == "id") {
      id = true;
      if (type != "text") bad = "column \"id\" is " + type + ", not text";
    } else if (col == "embedding") {
      embedding = true;
      if (type != "vector") {
        bad = "column \"embedding\" is " + type + ", not vector";
      } else if (typmod <= 0) {
        bad = "column \"embedding\" has no dimension (vector(n))";
      }
      out->dim = typmod;
    } else if (col == "metadata") {
      metadata = true;
      if (type != "jsonb") bad = "column \"metadata\" is " + type + ", not jsonb";
    } else if (col == "document" && type == "text") {
      out->has_document = true;
    }
    if (!bad.empty()) {
      throw CliError(kExitData, "table " + schema + "." + name + " is not a vecext collection: " + bad);
    }
  }
  const char* missing = !id ? "id" : !embedding ? "embedding" : !metadata ? "metadata" : nullptr;
  if (missing != nullptr) {
    throw CliError(kExitData, "table " + schema + "." + name + " is not a vecext collection: it has no column \"" +
                                  missing + "\"");
  }
  Result idx = ExecParams(c,
                          "SELECT opc.opcname::text FROM pg_catalog.pg_index i "
                          "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
                          "JOIN pg_catalog.pg_am am ON am.oid = ic.relam "
                          "JOIN pg_catalog.pg_opclass opc ON opc.oid = i.indclass[0] "
                          "JOIN pg_catalog.pg_attribute ka ON ka.attrelid = i.indrelid AND ka.attnum = i.indkey[0] "
                          "WHERE i.indrelid = ($1 || '.' || $2)::regclass AND am.amname = 'hnsw' "
                          "AND ka.attname = 'embedding' ORDER BY ic.relname",
                          {QuoteIdent(schema), QuoteIdent(name)}, "reading the catalog");
  out->metric = nullptr;
  for (int i = 0; i < PQntuples(idx.get()) && out->metric == nullptr; i++) {
    out->metric = FindMetricByOpclass(PQgetvalue(idx.get(), i, 0));
  }
  return true;
}

void LockCollection(PGconn* c, const std::string& schema, const std::string& name) {
  ExecParams(c, "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))",
             {"vecext:" + schema + "." + name}, "locking the collection");
}

std::string CreateTableSql(const Collection& coll) {
  return "CREATE TABLE " + coll.table + " (id text PRIMARY KEY, embedding vector(" + std::to_string(coll.dim) +
         ") NOT NULL, metadata jsonb NOT NULL DEFAULT '{}'::jsonb)";
}

std::string CreateHnswIndexSql(const Collection& coll, int m, int ef_construction) {
  return "CREATE INDEX " + QuoteIdent(coll.name + "_embedding_idx") + " ON " + coll.table + " USING hnsw (embedding " +
         coll.metric->opclass + ") WITH (m = " + std::to_string(m) +
         ", ef_construction = " + std::to_string(ef_construction) + ")";
}

std::string CreateMetadataIndexSql(const Collection& coll) {
  return "CREATE INDEX " + QuoteIdent(coll.name + "_metadata_idx") + " ON " + coll.table +
         " USING gin (metadata jsonb_path_ops)";
}

}  // namespace vecext::cli
