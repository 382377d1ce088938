// Filtered hnsw search on jsonb metadata: signatures of jsonb documents,
// filter programs compiled from scan keys (containment, key existence,
// jsonpath), and the SQL-callable debug functions. What is exact and what is
// rechecked is in docs/filtering.md; the signature format in
// src/core/meta_filter.h.
#include "pg/pg_includes.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
}

#include <cstring>

#include "core/meta_filter.h"
#include "pg/guard.h"
#include "pg/hnsw_filter.h"

namespace meta = vecext::meta;

struct HnswFilterProgram {
  int32 kind;      // HNSW_FILTER_*
  bool flat_code;  // code_test is the program's link-code test (else EvalCode walks the tree)
  meta::CodeTest code_test;
  uint32 nnodes;   // >= 1
  meta::Node nodes[FLEXIBLE_ARRAY_MEMBER];
};

// ---------------------------------------------------------------------------
// Walking a jsonb

typedef void (*HnswItemSink)(void* sink, const meta::Item* item);

struct HnswWalkFrame {
  meta::PathHash path;
  bool is_object;
  bool empty;  // no member or element seen yet
};

// Reports a scalar jsonb value at `path`. Numbers go out as normalized
// decimal text (numeric_normalize: equal numbers, equal text).
static void EmitScalar(const JsonbValue* v, meta::PathHash path, HnswItemSink sink, void* state) {
  meta::Item item{path, meta::ValueKind::kNull, nullptr, 0};
  switch (v->type) {
    case jbvNull:
      break;
    case jbvBool:
      item.kind = v->val.boolean ? meta::ValueKind::kTrue : meta::ValueKind::kFalse;
      break;
    case jbvString:
      item.kind = meta::ValueKind::kString;
      item.data = v->val.string.val;
      item.len = (size_t)v->val.string.len;
      break;
    case jbvNumeric: {
      char* text = numeric_normalize(v->val.numeric);
      item.kind = meta::ValueKind::kNumber;
      item.data = text;
      item.len = strlen(text);
      break;
    }
    default:
      return;  // not a scalar (cannot happen when descending into containers)
  }
  sink(state, &item);
}

// Reports every value of `jb`: scalars at their key path, containers (but
// the root) at theirs. Array elements stay at the array's path. With
// `empty_containers_only` (containment queries), a container is reported only
// when it is empty: the values inside a non-empty one already imply its path.
static void WalkJsonb(Jsonb* jb, bool empty_containers_only, HnswItemSink sink, void* state) {
  JsonbIterator* it = JsonbIteratorInit(&jb->root);
  JsonbValue v;
  JsonbIteratorToken token;
  int cap = 8;
  int depth = 0;
  HnswWalkFrame* frames = (HnswWalkFrame*)palloc(sizeof(HnswWalkFrame) * cap);
  meta::PathHash key_path = meta::RootPath();

  while ((token = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
    if (depth > 0 && token != WJB_END_ARRAY && token != WJB_END_OBJECT) frames[depth - 1].empty = false;
    switch (token) {
      case WJB_BEGIN_ARRAY:
      case WJB_BEGIN_OBJECT: {
        meta::PathHash path = meta::RootPath();
        if (depth > 0) {
          path = frames[depth - 1].is_object ? key_path : frames[depth - 1].path;
          if (!empty_containers_only) {
            const meta::Item item{path, meta::ValueKind::kContainer, nullptr, 0};
            sink(state, &item);
          }
        }
        if (depth == cap) {
          cap *= 2;
          frames = (HnswWalkFrame*)repalloc(frames, sizeof(HnswWalkFrame) * cap);
        }
        frames[depth].path = path;
        frames[depth].is_object = token == WJB_BEGIN_OBJECT;
        frames[depth].empty = true;
        depth++;
        break;
      }
      case WJB_KEY:
        key_path = meta::ChildPath(frames[depth - 1].path, v.val.string.val, (size_t)v.val.string.len);
        break;
      case WJB_VALUE:
        EmitScalar(&v, key_path, sink, state);
        break;
      case WJB_ELEM:
        EmitScalar(&v, frames[depth - 1].path, sink, state);
        break;
      case WJB_END_ARRAY:
      case WJB_END_OBJECT:
        depth--;
        if (empty_containers_only && depth > 0 && frames[depth].empty) {
          const meta::Item item{frames[depth].path, meta::ValueKind::kContainer, nullptr, 0};
          sink(state, &item);
        }
        break;
      default:
        break;
    }
  }
  pfree(frames);
}

// ---------------------------------------------------------------------------
// Signatures

static void EncoderSink(void* state, const meta::Item* item) {
  // A number that does not parse leaves the signature truncated: safe.
  (void)((meta::SignatureEncoder*)state)->Add(*item);
}

bytea* HnswMetaEncode(Jsonb* doc, int max_bytes, bool wide_numbers) {
  uint8 buf[meta::kMaxSignatureBytes];
  size_t len = 0;
  if (doc == NULL) {
    len = meta::EncodeNull(buf, sizeof buf);
  } else {
    MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "hnsw metadata signature", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(tmp);
    meta::SignatureEncoder* enc = (meta::SignatureEncoder*)palloc(sizeof(meta::SignatureEncoder));
    meta::EncodeOptions opt;
    opt.max_bytes = (size_t)Max(max_bytes, 0);
    opt.wide_numbers = wide_numbers;
    enc->Init(opt);
    WalkJsonb(doc, false, EncoderSink, enc);
    vecext::Status st = enc->Finish(buf, sizeof buf, &len);
    MemoryContextSwitchTo(old);
    MemoryContextDelete(tmp);
    if (!st.ok()) elog(ERROR, "could not encode metadata signature: %s", st.message);
  }
  bytea* out = (bytea*)palloc(VARHDRSZ + len);
  SET_VARSIZE(out, VARHDRSZ + len);
  memcpy(VARDATA(out), buf, len);
  return out;
}

bytea* HnswMetaEncodeDatum(Datum value, bool isnull, int max_bytes, bool wide_numbers) {
  if (isnull) return HnswMetaEncode(NULL, max_bytes, wide_numbers);
  Jsonb* doc = DatumGetJsonbP(value);
  bytea* out = HnswMetaEncode(doc, max_bytes, wide_numbers);
  if ((Pointer)doc != DatumGetPointer(value)) pfree(doc);
  return out;
}

// ---------------------------------------------------------------------------
// Compiling quals

static void* BuilderAlloc(void* ctx, size_t bytes) { return MemoryContextAlloc((MemoryContext)ctx, bytes); }
static void BuilderFree(void* ctx, void* p) { pfree(p); }

static void ContainmentSink(void* state, const meta::Item* item) {
  ((meta::ProgramBuilder*)state)->ContainedItem(*item);
}

// jsonb @> query: every value of the query must be in the document.
static void CompileContains(meta::ProgramBuilder* b, Jsonb* query) {
  b->OpenAnd();
  WalkJsonb(query, true, ContainmentSink, b);
  b->Close();
}

// jsonb ?| keys (any) or ?& keys (all); NULL elements are ignored, as the
// operators do.
static void CompileExistsArray(meta::ProgramBuilder* b, ArrayType* keys, bool all) {
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
  if (all)
    b->OpenAnd();
  else
    b->OpenOr();
  for (int i = 0; i < n; i++) {
    if (nulls[i]) continue;
    text* key = DatumGetTextPP(elems[i]);
    b->KeyExists(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
  }
  b->Close();
}

// ---- jsonpath --------------------------------------------------------------
//
// The index model of lax jsonpath: an accessor chain `$.k1.k2...` (or `@...`
// in a filter) only ever reaches values at the key path k1.k2..., whatever
// arrays it unwraps or subscripts it applies on the way, since arrays add no
// step to a signature's paths. Strict mode reaches a subset of those values,
// so it is handled like lax. Every condition emitted below is necessary for
// the expression to be true (for @@) or non-empty (for @?); what cannot be
// reduced to such a condition is kMaybe.

enum HnswChain {
  HNSW_CHAIN_NONE,    // not an accessor chain from $ or @
  HNSW_CHAIN_PREFIX,  // a chain with a step we do not follow: *path is the part before it
  HNSW_CHAIN_FULL,    // keys, subscripts and filters only: *path is where its values are
};

static void CompilePredicate(meta::ProgramBuilder* b, JsonPathItem* v, bool have_current, meta::PathHash current);

// Follows the chain that starts at v ($ or @). Filters on the way emit their
// predicates (with @ at the path reached so far) into the open group.
static HnswChain ResolveChain(meta::ProgramBuilder* b, JsonPathItem* v, bool have_current, meta::PathHash current,
                              meta::PathHash* out) {
  meta::PathHash path;
  if (v->type == jpiRoot)
    path = meta::RootPath();
  else if (v->type == jpiCurrent && have_current)
    path = current;
  else
    return HNSW_CHAIN_NONE;

  JsonPathItem items[2];
  items[0] = *v;
  int cur = 0;
  while (jspGetNext(&items[cur], &items[1 - cur])) {
    cur = 1 - cur;
    JsonPathItem* step = &items[cur];
    switch (step->type) {
      case jpiKey: {
        int32 len;
        char* key = jspGetString(step, &len);
        path = meta::ChildPath(path, key, (size_t)len);
        break;
      }
      case jpiAnyArray:
      case jpiIndexArray:
        break;  // elements are at the array's path
      case jpiFilter: {
        JsonPathItem arg;
        jspGetArg(step, &arg);
        CompilePredicate(b, &arg, true, path);
        break;
      }
      default:  // .*, .**, methods: values elsewhere, but only if the prefix has some
        *out = path;
        return HNSW_CHAIN_PREFIX;
    }
  }
  *out = path;
  return HNSW_CHAIN_FULL;
}

// Emits what must hold for the expression v to yield at least one item.
static void RequireNonEmpty(meta::ProgramBuilder* b, JsonPathItem* v, bool have_current, meta::PathHash current) {
  check_stack_depth();
  switch (v->type) {
    case jpiRoot:
    case jpiCurrent: {
      meta::PathHash path;
      if (ResolveChain(b, v, have_current, current, &path) != HNSW_CHAIN_NONE) b->HasPath(path);
      return;
    }
    case jpiAdd:
    case jpiSub:
    case jpiMul:
    case jpiDiv:
    case jpiMod: {  // both operands must be single numbers
      JsonPathItem left, right;
      jspGetLeftArg(v, &left);
      jspGetRightArg(v, &right);
      RequireNonEmpty(b, &left, have_current, current);
      RequireNonEmpty(b, &right, have_current, current);
      return;
    }
    case jpiPlus:
    case jpiMinus: {  // applied to each item of the operand
      JsonPathItem arg;
      jspGetArg(v, &arg);
      RequireNonEmpty(b, &arg, have_current, current);
      return;
    }
    default:
      return;  // constants, variables, ...: nothing known
  }
}

// A scalar constant without further steps: its kind and bytes/text.
static bool GetConstant(JsonPathItem* v, meta::ValueKind* kind, const char** data, size_t* len) {
  if (jspHasNext(v)) return false;
  *data = NULL;
  *len = 0;
  switch (v->type) {
    case jpiNull:
      *kind = meta::ValueKind::kNull;
      return true;
    case jpiBool:
      *kind = jspGetBool(v) ? meta::ValueKind::kTrue : meta::ValueKind::kFalse;
      return true;
    case jpiString: {
      int32 n;
      *data = jspGetString(v, &n);
      *len = (size_t)n;
      *kind = meta::ValueKind::kString;
      return true;
    }
    case jpiNumeric: {
      char* text = numeric_normalize(jspGetNumeric(v));
      *data = text;
      *len = strlen(text);
      *kind = meta::ValueKind::kNumber;
      return true;
    }
    default:
      return false;
  }
}

static meta::CmpOp CmpOpOf(JsonPathItemType type, bool flip) {
  switch (type) {
    case jpiEqual:
      return meta::CmpOp::kEq;
    case jpiNotEqual:
      return meta::CmpOp::kNe;
    case jpiLess:
      return flip ? meta::CmpOp::kGt : meta::CmpOp::kLt;
    case jpiGreater:
      return flip ? meta::CmpOp::kLt : meta::CmpOp::kGt;
    case jpiLessOrEqual:
      return flip ? meta::CmpOp::kGe : meta::CmpOp::kLe;
    default:  // jpiGreaterOrEqual
      return flip ? meta::CmpOp::kLe : meta::CmpOp::kGe;
  }
}

// `left op right` is true: some pair of items compares true.
static void CompileComparison(meta::ProgramBuilder* b, JsonPathItem* v, bool have_current, meta::PathHash current) {
  JsonPathItem left, right;
  jspGetLeftArg(v, &left);
  jspGetRightArg(v, &right);
  meta::ValueKind kind;
  const char* data;
  size_t len;
  b->OpenAnd();
  JsonPathItem* chain = NULL;
  bool flip = false;
  if (GetConstant(&right, &kind, &data, &len)) {
    chain = &left;
  } else if (GetConstant(&left, &kind, &data, &len)) {
    chain = &right;
    flip = true;
  }
  meta::PathHash path;
  HnswChain r = chain != NULL ? ResolveChain(b, chain, have_current, current, &path) : HNSW_CHAIN_NONE;
  if (r == HNSW_CHAIN_FULL) {
    b->PathCompare(path, CmpOpOf(v->type, flip), kind, data, len);
  } else if (r == HNSW_CHAIN_PREFIX) {
    b->HasPath(path);
  } else {
    RequireNonEmpty(b, &left, have_current, current);
    RequireNonEmpty(b, &right, have_current, current);
  }
  b->Close();
}

// Emits what must hold for the predicate v to be true.
static void CompilePredicate(meta::ProgramBuilder* b, JsonPathItem* v, bool have_current, meta::PathHash current) {
  check_stack_depth();
  if (jspHasNext(v)) {
    b->Maybe();
    return;
  }
  switch (v->type) {
    case jpiAnd:
    case jpiOr: {
      JsonPathItem left, right;
      jspGetLeftArg(v, &left);
      jspGetRightArg(v, &right);
      if (v->type == jpiAnd)
        b->OpenAnd();
      else
        b->OpenOr();
      CompilePredicate(b, &left, have_current, current);
      CompilePredicate(b, &right, have_current, current);
      b->Close();
      return;
    }
    case jpiEqual:
    case jpiNotEqual:
    case jpiLess:
    case jpiGreater:
    case jpiLessOrEqual:
    case jpiGreaterOrEqual:
      CompileComparison(b, v, have_current, current);
      return;
    case jpiExists: {
      JsonPathItem arg;
      jspGetArg(v, &arg);
      b->OpenAnd();
      RequireNonEmpty(b, &arg, have_current, current);
      b->Close();
      return;
    }
    case jpiStartsWith: {  // the string operand must exist
      JsonPathItem left;
      jspGetLeftArg(v, &left);
      b->OpenAnd();
      RequireNonEmpty(b, &left, have_current, current);
      b->Close();
      return;
    }
    case jpiLikeRegex: {
      JsonPathItem expr;
      jspInitByBuffer(&expr, v->base, v->content.like_regex.expr);
      b->OpenAnd();
      RequireNonEmpty(b, &expr, have_current, current);
      b->Close();
      return;
    }
    default:  // !, is unknown, ...: a NO could turn into a true
      b->Maybe();
      return;
  }
}

static bool IsPredicate(JsonPathItemType type) {
  switch (type) {
    case jpiAnd:
    case jpiOr:
    case jpiNot:
    case jpiIsUnknown:
    case jpiEqual:
    case jpiNotEqual:
    case jpiLess:
    case jpiGreater:
    case jpiLessOrEqual:
    case jpiGreaterOrEqual:
    case jpiExists:
    case jpiStartsWith:
    case jpiLikeRegex:
      return true;
    default:
      return false;
  }
}

// jsonb @@ path (match) or jsonb @? path (exists).
static void CompileJsonPath(meta::ProgramBuilder* b, JsonPath* jp, bool match) {
  JsonPathItem v;
  jspInit(&v, jp);
  if (IsPredicate(v.type)) {
    // @@: the predicate must be true. @?: a predicate always yields one
    // item (its boolean or null), so the operator is always true.
    if (match)
      CompilePredicate(b, &v, false, 0);
    else
      b->Maybe();
    return;
  }
  b->OpenAnd();
  if (match) {
    // The result must be exactly one item, the boolean true.
    meta::PathHash path;
    HnswChain r = ResolveChain(b, &v, false, 0, &path);
    if (r == HNSW_CHAIN_FULL)
      b->HasValue(path, meta::ValueKind::kTrue, NULL, 0);
    else if (r == HNSW_CHAIN_PREFIX)
      b->HasPath(path);
    else
      b->Maybe();
  } else {
    RequireNonEmpty(b, &v, false, 0);
  }
  b->Close();
}

// Emits the conditions of one qual `metadata <strategy> arg`.
static void CompileQual(meta::ProgramBuilder* b, StrategyNumber strategy, Datum arg) {
  switch (strategy) {
    case HNSW_FILTER_STRATEGY_CONTAINS:
      CompileContains(b, DatumGetJsonbP(arg));
      break;
    case HNSW_FILTER_STRATEGY_EXISTS: {
      text* k = DatumGetTextPP(arg);
      b->KeyExists(VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k));
      break;
    }
    case HNSW_FILTER_STRATEGY_EXISTS_ANY:
    case HNSW_FILTER_STRATEGY_EXISTS_ALL:
      CompileExistsArray(b, DatumGetArrayTypeP(arg), strategy == HNSW_FILTER_STRATEGY_EXISTS_ALL);
      break;
    case HNSW_FILTER_STRATEGY_PATH_EXISTS:
    case HNSW_FILTER_STRATEGY_PATH_MATCH:
      CompileJsonPath(b, DatumGetJsonPathP(arg), strategy == HNSW_FILTER_STRATEGY_PATH_MATCH);
      break;
    default:
      b->Maybe();
      break;
  }
}

HnswFilterProgram* HnswFilterCompile(ScanKey keys, int nkeys, AttrNumber attno) {
  MemoryContext caller = CurrentMemoryContext;
  MemoryContext tmp = AllocSetContextCreate(caller, "hnsw filter compile", ALLOCSET_SMALL_SIZES);
  MemoryContextSwitchTo(tmp);
  meta::ProgramBuilder* b = (meta::ProgramBuilder*)palloc(sizeof(meta::ProgramBuilder));
  b->Init(vecext::hnsw::Allocator{BuilderAlloc, BuilderFree, tmp});
  b->OpenAnd();
  for (int i = 0; i < nkeys; i++) {
    ScanKey key = &keys[i];
    if (key->sk_attno != attno) continue;
    if (key->sk_flags & SK_ISNULL) {  // strict operators: a NULL argument matches nothing
      b->No();
      continue;
    }
    if (key->sk_flags & SK_SEARCHARRAY) {
      // metadata <op> ANY(array) (amsearcharray): any element; NULL elements
      // never make the operator true.
      ArrayType* arr = DatumGetArrayTypeP(key->sk_argument);
      int16 typlen;
      bool typbyval;
      char typalign;
      get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
      Datum* elems;
      bool* nulls;
      int n;
      deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign, &elems, &nulls, &n);
      b->OpenOr();
      for (int j = 0; j < n; j++) {
        if (nulls[j]) continue;
        b->OpenAnd();
        CompileQual(b, key->sk_strategy, elems[j]);
        b->Close();
      }
      b->Close();
      continue;
    }
    CompileQual(b, key->sk_strategy, key->sk_argument);
  }
  b->Close();
  uint32_t n = 0;
  const meta::Node* nodes = b->Finish(&n);
  MemoryContextSwitchTo(caller);
  HnswFilterProgram* program =
      (HnswFilterProgram*)palloc(offsetof(HnswFilterProgram, nodes) + sizeof(meta::Node) * n);
  program->nnodes = n;
  memcpy(program->nodes, nodes, sizeof(meta::Node) * n);
  program->flat_code = meta::CompileCodeTest(program->nodes, n, &program->code_test);
  switch (meta::Classify(nodes, n)) {
    case meta::ProgramKind::kAlwaysNo:
      program->kind = HNSW_FILTER_ALWAYS_NO;
      break;
    case meta::ProgramKind::kAlwaysMaybe:
      program->kind = HNSW_FILTER_ALWAYS_MAYBE;
      break;
    default:
      program->kind = HNSW_FILTER_DEPENDS;
      break;
  }
  MemoryContextDelete(tmp);
  return program;
}

int HnswFilterKind(const HnswFilterProgram* program) { return program->kind; }

int HnswFilterValueKeys(const HnswFilterProgram* program, uint64* out, int cap) {
  static_assert(sizeof(meta::ValueKey) == sizeof(uint64), "value keys are 64 bits");
  if (cap <= 0) return 0;
  return (int)meta::RequiredValueKeys(program->nodes, program->nnodes, (meta::ValueKey*)out, (size_t)cap);
}

HnswFilterProgram* HnswFilterForValueKey(uint64 key) {
  meta::Node node;
  if (!meta::ValueKeyNode(key, &node)) return NULL;
  HnswFilterProgram* program = (HnswFilterProgram*)palloc(offsetof(HnswFilterProgram, nodes) + sizeof(meta::Node));
  program->nnodes = 1;
  program->nodes[0] = node;
  program->flat_code = meta::CompileCodeTest(program->nodes, 1, &program->code_test);
  program->kind = HNSW_FILTER_DEPENDS;
  return program;
}

bool HnswFilterMayMatch(const HnswFilterProgram* program, const uint8* sig, Size len) {
  return meta::Eval(program->nodes, program->nnodes, sig, len) == meta::Match::kMaybe;
}

bool HnswFilterCodeMayMatch(const HnswFilterProgram* program, uint64 code) {
  if (program->flat_code) return meta::CodeTestMatches(program->code_test, code);
  return meta::EvalCode(program->nodes, program->nnodes, code) == meta::Match::kMaybe;
}

bool HnswFilterCodeTerms(const HnswFilterProgram* program, const uint64** terms, int* nterms) {
  if (!program->flat_code) return false;
  static_assert(sizeof(meta::LinkCode) == sizeof(uint64), "link codes are 64 bits");
  *terms = (const uint64*)program->code_test.terms;
  *nterms = program->code_test.n;
  return true;
}

char* HnswFilterDescribe(const HnswFilterProgram* program) {
  size_t need = meta::Describe(program->nodes, program->nnodes, NULL, 0) + 1;
  char* out = (char*)palloc(need);
  meta::Describe(program->nodes, program->nnodes, out, need);
  return out;
}

// ---------------------------------------------------------------------------
// SQL-callable debug functions: the filter end to end, without an index.

// The strategy of an operator name, or 0.
static int StrategyOf(const char* op) {
  static const char* const names[] = {"@>", "?", "?|", "?&", "@?", "@@"};
  for (int i = 0; i < HNSW_FILTER_NSTRATEGIES; i++)
    if (strcmp(op, names[i]) == 0) return i + 1;
  return 0;
}

// 'no' when the index would exclude `doc` (NULL: SQL NULL) for the qual
// `doc <strategy> arg`, else 'maybe'.
static text* MatchText(Jsonb* doc, int strategy, Datum arg, bool arg_isnull) {
  ScanKeyData key;
  memset(&key, 0, sizeof key);
  key.sk_flags = arg_isnull ? SK_ISNULL : 0;
  key.sk_attno = 1;
  key.sk_strategy = (StrategyNumber)strategy;
  key.sk_argument = arg;
  HnswFilterProgram* program = HnswFilterCompile(&key, 1, 1);
  bytea* sig = HnswMetaEncode(doc, HNSW_FILTER_DEFAULT_MAX_BYTES, false);
  bool may = HnswFilterMayMatch(program, (const uint8*)VARDATA(sig), VARSIZE(sig) - VARHDRSZ);
  return cstring_to_text(may ? "maybe" : "no");
}

static char* OpArgument(FunctionCallInfo fcinfo, int argno, const char* dflt) {
  if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return pstrdup(dflt);
  return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

// hnsw_metadata_signature(metadata jsonb, max_bytes int4, wide_numbers bool)
// returns bytea: the signature an index stores for this metadata.
VECEXT_FUNCTION(hnsw_metadata_signature) {
  Jsonb* doc = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
  int max_bytes = PG_NARGS() > 1 && !PG_ARGISNULL(1) ? PG_GETARG_INT32(1) : HNSW_FILTER_DEFAULT_MAX_BYTES;
  bool wide = PG_NARGS() > 2 && !PG_ARGISNULL(2) ? PG_GETARG_BOOL(2) : false;
  if (max_bytes < HNSW_FILTER_MIN_MAX_BYTES || max_bytes > HNSW_FILTER_MAX_MAX_BYTES)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("max_bytes must be between %d and %d", HNSW_FILTER_MIN_MAX_BYTES, HNSW_FILTER_MAX_MAX_BYTES)));
  PG_RETURN_BYTEA_P(HnswMetaEncode(doc, max_bytes, wide));
}

// hnsw_filter_matches(metadata jsonb, query jsonb): for metadata @> query.
VECEXT_FUNCTION(hnsw_filter_matches) {
  Jsonb* doc = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
  PG_RETURN_TEXT_P(MatchText(doc, HNSW_FILTER_STRATEGY_CONTAINS, PG_GETARG_DATUM(1), PG_ARGISNULL(1)));
}

// hnsw_filter_matches_any(metadata jsonb, queries jsonb[]): for
// metadata @> ANY(queries), as an index with amsearcharray sees it.
VECEXT_FUNCTION(hnsw_filter_matches_any) {
  Jsonb* doc = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
  ScanKeyData key;
  memset(&key, 0, sizeof key);
  key.sk_flags = PG_ARGISNULL(1) ? SK_ISNULL : SK_SEARCHARRAY;
  key.sk_attno = 1;
  key.sk_strategy = HNSW_FILTER_STRATEGY_CONTAINS;
  key.sk_argument = PG_ARGISNULL(1) ? (Datum)0 : PG_GETARG_DATUM(1);
  HnswFilterProgram* program = HnswFilterCompile(&key, 1, 1);
  bytea* sig = HnswMetaEncode(doc, HNSW_FILTER_DEFAULT_MAX_BYTES, false);
  bool may = HnswFilterMayMatch(program, (const uint8*)VARDATA(sig), VARSIZE(sig) - VARHDRSZ);
  PG_RETURN_TEXT_P(cstring_to_text(may ? "maybe" : "no"));
}

// hnsw_filter_matches_path(metadata jsonb, query jsonpath, op text '@@' or '@?').
VECEXT_FUNCTION(hnsw_filter_matches_path) {
  Jsonb* doc = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
  char* op = OpArgument(fcinfo, 2, "@@");
  int strategy = StrategyOf(op);
  if (strategy != HNSW_FILTER_STRATEGY_PATH_EXISTS && strategy != HNSW_FILTER_STRATEGY_PATH_MATCH)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid jsonpath operator \"%s\"", op),
                    errhint("Use '@@' or '@?'.")));
  PG_RETURN_TEXT_P(MatchText(doc, strategy, PG_GETARG_DATUM(1), PG_ARGISNULL(1)));
}

// hnsw_filter_matches_keys(metadata jsonb, keys text[], op text '?', '?|' or '?&').
VECEXT_FUNCTION(hnsw_filter_matches_keys) {
  Jsonb* doc = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
  char* op = OpArgument(fcinfo, 2, "?|");
  int strategy = StrategyOf(op);
  if (strategy != HNSW_FILTER_STRATEGY_EXISTS && strategy != HNSW_FILTER_STRATEGY_EXISTS_ANY &&
      strategy != HNSW_FILTER_STRATEGY_EXISTS_ALL)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid key operator \"%s\"", op),
                    errhint("Use '?', '?|' or '?&'.")));
  if (PG_ARGISNULL(1)) PG_RETURN_TEXT_P(MatchText(doc, strategy, (Datum)0, true));
  ArrayType* keys = PG_GETARG_ARRAYTYPE_P(1);
  if (strategy != HNSW_FILTER_STRATEGY_EXISTS) PG_RETURN_TEXT_P(MatchText(doc, strategy, PointerGetDatum(keys), false));
  // '?' takes one key.
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
  if (n != 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("operator ? takes exactly one key")));
  PG_RETURN_TEXT_P(MatchText(doc, strategy, elems[0], nulls[0]));
}

// hnsw_filter_explain(op text, query text): the program the index evaluates
// for `metadata <op> query`; 'maybe' means the index cannot use this qual.
VECEXT_FUNCTION(hnsw_filter_explain) {
  char* op = text_to_cstring(PG_GETARG_TEXT_PP(0));
  char* query = text_to_cstring(PG_GETARG_TEXT_PP(1));
  int strategy = StrategyOf(op);
  Oid type;
  switch (strategy) {
    case HNSW_FILTER_STRATEGY_CONTAINS:
      type = JSONBOID;
      break;
    case HNSW_FILTER_STRATEGY_EXISTS:
      type = TEXTOID;
      break;
    case HNSW_FILTER_STRATEGY_EXISTS_ANY:
    case HNSW_FILTER_STRATEGY_EXISTS_ALL:
      type = TEXTARRAYOID;
      break;
    case HNSW_FILTER_STRATEGY_PATH_EXISTS:
    case HNSW_FILTER_STRATEGY_PATH_MATCH:
      type = JSONPATHOID;
      break;
    default:
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid filter operator \"%s\"", op),
                      errhint("Use one of @>, ?, ?|, ?&, @?, @@.")));
  }
  Oid input;
  Oid ioparam;
  getTypeInputInfo(type, &input, &ioparam);
  Datum arg = OidInputFunctionCall(input, query, ioparam, -1);
  ScanKeyData key;
  memset(&key, 0, sizeof key);
  key.sk_attno = 1;
  key.sk_strategy = (StrategyNumber)strategy;
  key.sk_argument = arg;
  PG_RETURN_TEXT_P(cstring_to_text(HnswFilterDescribe(HnswFilterCompile(&key, 1, 1))));
}
