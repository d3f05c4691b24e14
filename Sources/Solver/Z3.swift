import CZ3

/// The few terms of Z3's C API the class solver uses: 32-bit vectors (every TCB variable and segment field is one,
/// and sequence arithmetic is bit-vector arithmetic modulo 2^32) and booleans. One context per instance; its terms
/// live as long as it does (a context made with `Z3_mk_context` collects them itself). Not thread-safe, as Z3's
/// contexts are not: `ClassSolver` serializes its use.
final class Z3 {
    typealias Term = OpaquePointer

    let ctx: OpaquePointer
    let bv32: OpaquePointer
    let bv8: OpaquePointer

    init() {
        let cfg = Z3_mk_config()
        ctx = Z3_mk_context(cfg)!
        Z3_del_config(cfg)
        bv32 = Z3_mk_bv_sort(ctx, 32)!
        bv8 = Z3_mk_bv_sort(ctx, 8)!
    }

    deinit { Z3_del_context(ctx) }

    // MARK: terms

    func bv(_ name: String) -> Term { Z3_mk_const(ctx, Z3_mk_string_symbol(ctx, name), bv32)! }
    func bool(_ name: String) -> Term { Z3_mk_const(ctx, Z3_mk_string_symbol(ctx, name), Z3_mk_bool_sort(ctx))! }
    func num(_ v: UInt32) -> Term { Z3_mk_unsigned_int(ctx, v, bv32)! }
    func byte(_ v: Int) -> Term { Z3_mk_unsigned_int(ctx, UInt32(v), bv8)! }
    var yes: Term { Z3_mk_true(ctx)! }
    var no: Term { Z3_mk_false(ctx)! }

    func add(_ a: Term, _ b: Term) -> Term { Z3_mk_bvadd(ctx, a, b)! }
    func sub(_ a: Term, _ b: Term) -> Term { Z3_mk_bvsub(ctx, a, b)! }
    func shl(_ a: Term, _ b: Term) -> Term { Z3_mk_bvshl(ctx, a, b)! }
    func eq(_ a: Term, _ b: Term) -> Term { Z3_mk_eq(ctx, a, b)! }
    func not(_ a: Term) -> Term { Z3_mk_not(ctx, a)! }
    func ite(_ c: Term, _ a: Term, _ b: Term) -> Term { Z3_mk_ite(ctx, c, a, b)! }
    func ule(_ a: Term, _ b: Term) -> Term { Z3_mk_bvule(ctx, a, b)! }
    func ult(_ a: Term, _ b: Term) -> Term { Z3_mk_bvult(ctx, a, b)! }
    /// RFC 9293 §3.10's modulo-2^32 "a < b": a - b is negative as a 32-bit two's complement number (as
    /// `TCPModel.seqLess`).
    func seqLess(_ a: Term, _ b: Term) -> Term { slt(sub(a, b), num(0)) }
    func slt(_ a: Term, _ b: Term) -> Term { Z3_mk_bvslt(ctx, a, b)! }
    func sle(_ a: Term, _ b: Term) -> Term { Z3_mk_bvsle(ctx, a, b)! }

    func and(_ xs: [Term]) -> Term {
        if xs.isEmpty { return yes }
        if xs.count == 1 { return xs[0] }
        return xs.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: Optional<OpaquePointer>.self) { Z3_mk_and(ctx, UInt32(xs.count), $0.baseAddress)! }
        }
    }

    func or(_ xs: [Term]) -> Term {
        if xs.isEmpty { return no }
        if xs.count == 1 { return xs[0] }
        return xs.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: Optional<OpaquePointer>.self) { Z3_mk_or(ctx, UInt32(xs.count), $0.baseAddress)! }
        }
    }

    // MARK: solving

    enum Outcome {
        case sat
        /// The assumptions in the unsatisfiable core (a subset of those passed).
        case unsat(core: [Term])
        case unknown
    }

    /// An incremental solver of this context: facts asserted once (a table's classifiers, bit-blasted once),
    /// then many checks under assumptions or inside `scope`.
    final class Solver {
        let z: Z3
        let s: OpaquePointer

        init(_ z: Z3, rlimit: UInt32, timeoutMs: UInt32) {
            self.z = z
            s = Z3_mk_solver(z.ctx)!
            Z3_solver_inc_ref(z.ctx, s)
            limit(rlimit: rlimit, timeoutMs: timeoutMs)
        }

        /// The bounds of the checks from now on. A deterministic bound first (Z3's resource count, the same on
        /// every machine and load), so that what is proven does not depend on how busy the machine was; the
        /// wall-clock bound only as a last resort.
        func limit(rlimit: UInt32, timeoutMs: UInt32) {
            let p = Z3_mk_params(z.ctx)
            Z3_params_inc_ref(z.ctx, p)
            Z3_params_set_uint(z.ctx, p, Z3_mk_string_symbol(z.ctx, "rlimit"), rlimit)
            Z3_params_set_uint(z.ctx, p, Z3_mk_string_symbol(z.ctx, "timeout"), timeoutMs)
            // Z3 otherwise takes SIGINT for itself during a check (it cancels the check and the run goes on):
            // tcpspec's own handler must end the run (measured: a conform interrupted while solving finished
            // and exited 0).
            Z3_params_set_bool(z.ctx, p, Z3_mk_string_symbol(z.ctx, "ctrl_c"), false)
            Z3_solver_set_params(z.ctx, s, p)
            Z3_params_dec_ref(z.ctx, p)
        }

        deinit { Z3_solver_dec_ref(z.ctx, s) }

        func assert(_ facts: [Term]) { for f in facts { Z3_solver_assert(z.ctx, s, f) } }

        /// `body` with facts asserted for it alone.
        func scope<T>(_ facts: [Term], _ body: () -> T) -> T {
            Z3_solver_push(z.ctx, s)
            defer { Z3_solver_pop(z.ctx, s, 1) }
            assert(facts)
            return body()
        }

        /// Decides the facts asserted under `assumptions` (boolean constants whose core names what contradicts).
        func check(assuming assumptions: [Term] = []) -> Outcome {
            let r = assumptions.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: Optional<OpaquePointer>.self) {
                    Z3_solver_check_assumptions(z.ctx, s, UInt32(assumptions.count), $0.baseAddress)
                }
            }
            switch r {
            case Z3_L_TRUE: return .sat
            case Z3_L_FALSE:
                let v = Z3_solver_get_unsat_core(z.ctx, s)
                Z3_ast_vector_inc_ref(z.ctx, v)
                defer { Z3_ast_vector_dec_ref(z.ctx, v) }
                return .unsat(core: (0..<Z3_ast_vector_size(z.ctx, v)).map { Z3_ast_vector_get(z.ctx, v, $0)! })
            default: return .unknown
            }
        }

        /// The last satisfiable check's values of `terms` (bit-vectors as numbers, booleans as 0/1).
        func values(_ terms: [Term]) -> [UInt32] {
            let ctx = z.ctx
            guard let m = Z3_solver_get_model(ctx, s) else { return terms.map { _ in 0 } }
            Z3_model_inc_ref(ctx, m)
            defer { Z3_model_dec_ref(ctx, m) }
            return terms.map { t in
                var out: OpaquePointer?
                guard Z3_model_eval(ctx, m, t, true, &out), let out else { return 0 }
                if Z3_get_sort_kind(ctx, Z3_get_sort(ctx, out)) == Z3_BOOL_SORT {
                    return Z3_get_bool_value(ctx, out) == Z3_L_TRUE ? 1 : 0
                }
                var u: UInt32 = 0
                return Z3_get_numeral_uint(ctx, out, &u) ? u : 0
            }
        }
    }
}
