// Declarations shared between src/pg files for module initialisation.
#pragma once

// Registers the vector type's GUCs (src/pg/vector.cpp). Called once from _PG_init.
void VecextVectorInit(void);

// Registers the hnsw GUCs and reloptions (src/pg/hnsw*.cpp). Called once from _PG_init.
void VecextHnswInit(void);
