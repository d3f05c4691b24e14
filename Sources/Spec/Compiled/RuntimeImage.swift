/// The compiled spec laid out flat for the model's inner loop: programs, classifier cases, decision trees and
/// chains in unmanaged buffers, so a transition touches no reference counts. Immutable after construction.
package final class RuntimeImage: @unchecked Sendable {
    /// The buffers as plain values: holders of a view (which keep the image alive by other means) read them
    /// without reference counting.
    package struct View: @unchecked Sendable {
        package let ops: UnsafeMutableBufferPointer<Op>
        /// Program p is ops[programStart[p] ..< programStart[p + 1]].
        package let programStart: UnsafeMutableBufferPointer<Int32>
        /// Classifier k's cases are caseValue/caseProgram[caseStart[k] ..< caseStart[k + 1]]; program -1 = otherwise.
        package let caseStart: UnsafeMutableBufferPointer<Int32>
        package let caseValue: UnsafeMutableBufferPointer<Int32>
        package let caseProgram: UnsafeMutableBufferPointer<Int32>
        package let nodes: UnsafeMutableBufferPointer<Node>
        /// Per (state, event): tree root and dimension range.
        package let tableRoot: UnsafeMutableBufferPointer<Int32>
        package let tableDimStart: UnsafeMutableBufferPointer<Int32>
        package let dims: UnsafeMutableBufferPointer<Dim>
        package let instrs: UnsafeMutableBufferPointer<Instr>
        package let chainStart: UnsafeMutableBufferPointer<Int32>
        package let templates: UnsafeMutableBufferPointer<Template>
        package let clears: UnsafeMutableBufferPointer<Bool>
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
        var ops: [Op] = []
        var starts: [Int32] = []
        for p in programs {
            starts.append(Int32(ops.count))
            ops += p.ops
        }
        starts.append(Int32(ops.count))

        var cs: [Int32] = [], cv: [Int32] = [], cp: [Int32] = []
        for c in classifiers {
            cs.append(Int32(cv.count))
            for k in c.cases {
                cv.append(Int32(k.value))
                cp.append(Int32(k.program.flatMap { p in programs.firstIndex(of: p) } ?? -1))
            }
        }
        cs.append(Int32(cv.count))

        var nodes: [Node] = [], roots: [Int32] = [], dimStarts: [Int32] = [], dims: [Dim] = []
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
        }
        dimStarts.append(Int32(dims.count))

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
                    caseProgram: Self.buffer(cp), nodes: Self.buffer(nodes), tableRoot: Self.buffer(roots), tableDimStart: Self.buffer(dimStarts),
                    dims: Self.buffer(dims), instrs: Self.buffer(ins), chainStart: Self.buffer(chs), templates: Self.buffer(tpls),
                    clears: Self.buffer(states.map(\.clears)))
    }

    deinit {
        view.ops.deallocate()
        view.programStart.deallocate()
        view.caseStart.deallocate()
        view.caseValue.deallocate()
        view.caseProgram.deallocate()
        view.nodes.deallocate()
        view.tableRoot.deallocate()
        view.tableDimStart.deallocate()
        view.dims.deallocate()
        view.instrs.deallocate()
        view.chainStart.deallocate()
        view.templates.deallocate()
        view.clears.deallocate()
    }
}
