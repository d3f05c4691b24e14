// Z3's C API (Debian libz3-dev): the solver behind Solver.ClassSolver.
#include <z3.h>
