-- vecext install script part 00: header
\echo Use "CREATE EXTENSION vecext" to load this file. \quit
