// Finding, checking and creating a collection's table (names.h) over libpq.
#pragma once

#include <string>

#include "names.h"
#include "pg.h"

namespace vecext::cli {

struct Collection {
  std::string schema, name;
  std::string table;            // quoted "schema"."name"
  int dim = 0;
  const Metric* metric = nullptr;  // from the hnsw index's operator class; nullptr: no hnsw index
  bool has_document = false;       // a "document text" column
};

// Reads the catalog. Returns false when no such table exists; throws
// CliError(kExitData) when the table lacks the collection's columns.
bool LookupCollection(PGconn* c, const std::string& schema, const std::string& name, Collection* out);

// Takes the advisory transaction lock the Python client takes around
// creating a collection (pg_advisory_xact_lock(hashtext('vecext:schema.name'))).
// REQUIRES: inside a transaction.
void LockCollection(PGconn* c, const std::string& schema, const std::string& name);

// CREATE TABLE of a new collection (no indexes).
std::string CreateTableSql(const Collection& coll);
// Its two indexes: hnsw on embedding, GIN on metadata.
std::string CreateHnswIndexSql(const Collection& coll, int m, int ef_construction);
std::string CreateMetadataIndexSql(const Collection& coll);

}  // namespace vecext::cli
