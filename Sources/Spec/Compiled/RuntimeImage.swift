import Core
/// The compiled spec laid out flat for the model's inner loop: programs, classifier cases, decision trees and
/// chains in unmanaged buffers, so a transition touches no reference counts. Immutable after construction.
package final class RuntimeImage: @unchecked Sendable {
    /// The buffers as plain values: holders of a view (which keep the image alive by other means) read them
    /// without reference counting.
    package struct View: @unchecked Sendable {
        package let ops: UnsafeMutableBufferPointer<Code>
        /// Program p is ops[programStart[p] ..< programStart[p + 1]].
        package let programStart: UnsafeMutableBufferPointer<Int32>
        /// Classifier k's cases are caseValue/caseProgram[caseStart[k] ..< caseStart[k + 1]]; program -1 = otherwise.
        package let caseStart: UnsafeMutableBufferPointer<Int32>
        package let caseValue: UnsafeMutableBufferPointer<Int32>
        package let caseProgram: UnsafeMutableBufferPointer<Int32>
        /// Per case, the states it can hold in, one bit per state (all set for a case every state has).
        package let caseStates: UnsafeMutableBufferPointer<UInt64>
        package let nodes: UnsafeMutableBufferPointer<Node>
        /// Per (state, event): tree root and dimension range.
        package let tableRoot: UnsafeMutableBufferPointer<Int32>
        package let tableDimStart: UnsafeMutableBufferPointer<Int32>
        package let dims: UnsafeMutableBufferPointer<Dim>
        /// Per (state, event): where its cells' chains start in `cellChains` (a model that records the input class
        /// computes the cell anyway, and then finds the chain with one load instead of walking the tree).
        package let tableCellStart: UnsafeMutableBufferPointer<Int32>
        /// The chain of each cell, as the tree decides it; `EventTable.impossible` where the tree decides for it.
        package let cellChains: UnsafeMutableBufferPointer<Int32>
        package let instrs: UnsafeMutableBufferPointer<Instr>
        package let chainStart: UnsafeMutableBufferPointer<Int32>
        package let templates: UnsafeMutableBufferPointer<Template>
        package let clears: UnsafeMutableBufferPointer<Bool>
    }


    /// One operation of a program as the model's inner loop runs it: a flat record, so that dispatching is one
    /// jump on `op` and reading an operand one load (the compiler's `Op` enum nests enums in its payloads: three
    /// to five dispatches for one fused comparison, measured as most of the offline checker's time).
    package struct Code: Sendable {
        package enum Opcode: UInt8, Sendable {
            /// Pushes operand x.
            case push
            /// Pushes 1 when the segment has any of the control bits in x.
            case flag
            case add, sub, min, max, and, or, not
            /// Pops c, b, a; pushes a when c is non-zero, else b.
            case choose
            /// Pops k, a; pushes a << k (0 for k above 31).
            case lshift
            /// Pops b, a; pushes whether a rel b is in `mask` (see `relation`).
            case cmp
            /// Pushes whether x rel y is in `mask`.
            case cmp2
            /// Replaces the top a with whether a rel x is in `mask`.
            case cmpWith
            case add2, sub2, addWith, subWith
            /// Pushes 1 when classifier z's value is in the 64-bit mask y:x.
            case classIn
            /// Skips the next x operations when the top is zero / nonzero (short-circuit and / or).
            case skipIfZero, skipIfNonZero
        }
        package var op: Opcode
        /// The kinds of operands x and y.
        package var xKind: Kind
        package var yKind: Kind
        /// For comparisons, the relations that make them true: 1 less, 2 equal, 4 greater (modulo 2^32).
        package var mask: UInt8
        package var x: UInt32
        package var y: UInt32
        package var z: UInt32

        /// What an operand's value is. (An enum: a `static let` of another module is read through an accessor.)
        package enum Kind: UInt8, Sendable { case register, field, constant }

        package static func relationMask(_ c: CompareOp) -> UInt8 {
            switch c {
            case .lt: 1
            case .le: 3
            case .gt: 4
            case .ge: 6
            case .eq: 2
            case .ne: 5
            }
        }

        static func operand(_ o: Operand) -> (Kind, UInt32) {
            switch o {
            case .reg(let r): (Kind.register, UInt32(r.rawValue))
            case .field(let f): (Kind.field, UInt32(f.rawValue))
            case .const(let v): (Kind.constant, v)
            }
        }

        init(op: Opcode, x: (Kind, UInt32) = (.constant, 0), y: (Kind, UInt32) = (.constant, 0), mask: UInt8 = 0, z: UInt32 = 0) {
            self.op = op
            xKind = x.0
            self.x = x.1
            yKind = y.0
            self.y = y.1
            self.mask = mask
            self.z = z
        }

        /// The flat form of one operation of the compiler's programs.
        package init(_ o: Op) {
            switch o {
            case .const(let v): self.init(op: .push, x: (Kind.constant, v))
            case .reg(let r): self.init(op: .push, x: (Kind.register, UInt32(r.rawValue)))
            case .field(let f): self.init(op: .push, x: (Kind.field, UInt32(f.rawValue)))
            case .flag(let b): self.init(op: .flag, x: (Kind.constant, UInt32(b.rawValue)))
            case .add: self.init(op: .add)
            case .sub: self.init(op: .sub)
            case .min: self.init(op: .min)
            case .choose: self.init(op: .choose)
            case .lshift: self.init(op: .lshift)
            case .max: self.init(op: .max)
            case .and: self.init(op: .and)
            case .or: self.init(op: .or)
            case .not: self.init(op: .not)
            case .cmp(let c): self.init(op: .cmp, mask: Code.relationMask(c))
            case .classIn(let c, let m):
                self.init(op: .classIn, x: (Kind.constant, UInt32(truncatingIfNeeded: m)), y: (Kind.constant, UInt32(truncatingIfNeeded: m >> 32)), z: UInt32(c))
            case .cmp2(let c, let a, let b): self.init(op: .cmp2, x: Code.operand(a), y: Code.operand(b), mask: Code.relationMask(c))
            case .add2(let a, let b): self.init(op: .add2, x: Code.operand(a), y: Code.operand(b))
            case .sub2(let a, let b): self.init(op: .sub2, x: Code.operand(a), y: Code.operand(b))
            case .cmpWith(let c, let b): self.init(op: .cmpWith, x: Code.operand(b), mask: Code.relationMask(c))
            case .addWith(let b): self.init(op: .addWith, x: Code.operand(b))
            case .subWith(let b): self.init(op: .subWith, x: Code.operand(b))
            case .skipIfZero(let n): self.init(op: .skipIfZero, x: (Kind.constant, UInt32(n)))
            case .skipIfNonZero(let n): self.init(op: .skipIfNonZero, x: (Kind.constant, UInt32(n)))
            }
        }
    }

    package struct Node {
        /// 0 leaf (arg = chain), 1 control bit (arg = bit mask), 2 classifier (arg = index); children at `first`.
        package var kind: Int8
        package var arg: Int32
        package var first: Int32
    }

    package struct Dim {
        package var kind: Int8
        package var arg: Int32
        package var radix: Int32
    }

    package struct Template {
        package var seq: Int32
        package var ack: Int32
        package var data: Int32
        package var wnd: Int32
        package var ctl: ControlBits
        package var seqUsesISS: Bool
        package var seqConstant: Bool
    }

    /// The buffers, owned by this image and freed with it.
    package let view: View

    private static func buffer<T>(_ xs: [T]) -> UnsafeMutableBufferPointer<T> {
        let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, xs.count))
        _ = b.initialize(from: xs)
        return b
    }

    init(programs: [Program], classifiers: [ClassifierInfo], tables: [EventTable], chains: [Chain], templates: [CompiledTemplate], states: [StateInfo]) {
        var ops: [Code] = []
        var starts: [Int32] = []
        for p in programs {
            starts.append(Int32(ops.count))
            ops += p.ops.map(Code.init)
        }
        starts.append(Int32(ops.count))

        var cs: [Int32] = [], cv: [Int32] = [], cp: [Int32] = [], cst: [UInt64] = []
        for c in classifiers {
            cs.append(Int32(cv.count))
            for k in c.cases {
                cst.append(k.states.map { $0.reduce(UInt64(0)) { $0 | (1 << UInt64($1)) } } ?? .max)
                cv.append(Int32(k.value))
                cp.append(Int32(k.program.flatMap { p in programs.firstIndex(of: p) } ?? -1))
            }
        }
        cs.append(Int32(cv.count))

        var nodes: [Node] = [], roots: [Int32] = [], dimStarts: [Int32] = [], dims: [Dim] = []
        var cellStarts: [Int32] = [], cellChains: [Int32] = []
        func dim(_ d: Dimension, _ radix: Int) -> Dim {
            switch d {
            case .bit(let b): Dim(kind: 1, arg: Int32(b.rawValue), radix: Int32(radix))
            case .classifier(let k): Dim(kind: 2, arg: Int32(k), radix: Int32(radix))
            }
        }
        for t in tables {
            roots.append(Int32(nodes.count))
            dimStarts.append(Int32(dims.count))
            let base = Int32(nodes.count)
            for (d, r) in zip(t.dimensions, t.radices) { dims.append(dim(d, r)) }
            for n in t.tree {
                switch n {
                case .leaf(let c): nodes.append(Node(kind: 0, arg: Int32(c), first: 0))
                case .split(let d, let first):
                    let dd = dim(t.dimensions[d], t.radices[d])
                    nodes.append(Node(kind: dd.kind, arg: dd.arg, first: base + Int32(first)))
                }
            }
            if t.tree.isEmpty { nodes.append(Node(kind: 0, arg: -1, first: 0)) }
            cellStarts.append(Int32(cellChains.count))
            // A table without a tree (an incomplete one) decides -1 for every input, as its leaf does.
            cellChains += t.tree.isEmpty ? Array(repeating: -1, count: max(1, t.cellCount)) : t.cellChains.map(Int32.init)
        }
        dimStarts.append(Int32(dims.count))
        cellStarts.append(Int32(cellChains.count))

        var ins: [Instr] = [], chs: [Int32] = []
        for c in chains {
            chs.append(Int32(ins.count))
            ins += c.instrs
        }
        chs.append(Int32(ins.count))

        func idx(_ p: Program?) -> Int32 { p.flatMap { programs.firstIndex(of: $0) }.map(Int32.init) ?? -1 }
        let tpls = templates.map {
            Template(seq: idx($0.seq), ack: idx($0.ack), data: idx($0.data), wnd: idx($0.wnd), ctl: $0.ctl, seqUsesISS: $0.seqUsesISS, seqConstant: $0.seqConstant)
        }
        view = View(ops: Self.buffer(ops), programStart: Self.buffer(starts), caseStart: Self.buffer(cs), caseValue: Self.buffer(cv),
                    caseProgram: Self.buffer(cp), caseStates: Self.buffer(cst), nodes: Self.buffer(nodes), tableRoot: Self.buffer(roots), tableDimStart: Self.buffer(dimStarts),
                    dims: Self.buffer(dims), tableCellStart: Self.buffer(cellStarts), cellChains: Self.buffer(cellChains), instrs: Self.buffer(ins), chainStart: Self.buffer(chs), templates: Self.buffer(tpls),
                    clears: Self.buffer(states.map(\.clears)))
    }

    deinit {
        view.ops.deallocate()
        view.programStart.deallocate()
        view.caseStart.deallocate()
        view.caseValue.deallocate()
        view.caseProgram.deallocate()
        view.caseStates.deallocate()
        view.nodes.deallocate()
        view.tableRoot.deallocate()
        view.tableDimStart.deallocate()
        view.dims.deallocate()
        view.tableCellStart.deallocate()
        view.cellChains.deallocate()
        view.instrs.deallocate()
        view.chainStart.deallocate()
        view.templates.deallocate()
        view.clears.deallocate()
    }
}
