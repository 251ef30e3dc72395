# generate.awk — random well-typed .vlm models for tests/suites/fuzz_compile.sh.
# Where the mutants (mutate.awk) mostly probe the checker, these mostly pass
# it, so they probe code generation: every distribution as latent and
# observed, the treatments side by side (enumerated, guided, automatic),
# constraints and initializers, lets, nets, indexing, `@`, guides amortized
# and local. Writes OUT/gNNNN.vlm and a line "gNNNN.vlm generated" per
# model to OUT/index.gen. Usage:
#   awk -v seed=S -v count=N -v out=DIR -f generate.awk
# Same Park-Miller generator as mutate.awk: every awk makes the same models.

function rnd(n) { seed = (seed * 16807) % 2147483647; return int(seed % n) }
function pick(list,    a, n) { n = split(list, a, "|"); return a[rnd(n) + 1] }
function chance(p) { return rnd(1000) < p * 1000 }

# ------------------------------------------------------------ the scope
# symbol i: NM[i] name, KD[i] kind, SH[i] shape ("" | "D" | "K" | "K,D" |
# "D,D" | "D,K"), SP[i] support (real pos unit cat bin count), CN[i]
# constraint, GD[i] 1 if declared in the guide, SM[i] 1 once the guide
# sampled it (latents)
function decl(name, kind, shape, sup, con) {
    ns++; NM[ns] = name; KD[ns] = kind; SH[ns] = shape; SP[ns] = sup; CN[ns] = con
    GD[ns] = in_guide; SM[ns] = 0
    return ns
}
function brk(shape) { return shape == "" ? "" : "[" shape "]" }
# Is symbol i readable here as a value?
function visible(i) {
    if (KD[i] == "net") return 0
    if (!in_guide) return !GD[i]
    if (GD[i]) return 1
    return KD[i] == "const" || KD[i] == "observed" || KD[i] == "input" || (KD[i] == "latent" && SM[i])
}
# a visible value symbol of this shape (and, if pos, with positive values)
function find(shape, pos,    i, c, C) {
    c = 0
    for (i = 1; i <= ns; i++)
        if (visible(i) && KD[i] != "const" && SH[i] == shape && (!pos || SP[i] == "pos"))
            C[++c] = i
    return c ? NM[C[rnd(c) + 1]] : ""
}

# ---------------------------------------------------------- expressions
# A real expression of `shape`; positive values if pos.
function ex(shape, pos, depth,    r, s, t) {
    if (depth > 3) return pos ? pick("0.5|1|2") : pick("0|1|-1|0.5")
    r = rnd(10)
    if (pos) {
        if (r < 2) return pick("0.5|1|2|1.5")
        if (r < 4) { s = find(shape, 1); if (s != "") return s }
        if (r < 6) return pick("exp|softplus") "(" ex(shape, 0, depth + 1) ")"
        if (r < 7) return ex(shape, 1, depth + 1) " * " ex("", 1, depth + 1)
        if (r < 8) return ex(shape, 1, depth + 1) " + " ex(shape, 1, depth + 1)
        if (r < 9 && shape == "") return "sum(exp(" full("D", depth + 1) "))"
        return "exp(" ex(shape, 0, depth + 1) ")"
    }
    if (r < 1) return pick("0|1|-1|0.5|2")
    if (r < 4) { s = find(shape, 0); if (s != "") return s }
    if (r < 5) return ex(shape, 0, depth + 1) " " pick("+|-|*") " " ex(pick(shape "|"), 0, depth + 1)
    if (r < 6) return pick("tanh|sigmoid|relu|abs|elu|log1p|softplus") "(" ex(shape, 0, depth + 1) ")"
    if (r < 7) return "-" ex(shape, 0, depth + 1)
    if (r < 8) { s = indexed(shape); if (s != "") return s }
    if (r < 9 && shape == "D") { s = netcall(depth); if (s != "") return s }
    if (r < 9 && shape == "D") { t = find("D,D", 0); if (t != "") return t " @ " full("D", depth + 1) }
    # the builtins: one_hot of a Categorical, softmax, pow
    if (shape == "K" || shape == "D,K") { s = onehot(shape); if (s != "" && chance(0.5)) return s }
    if (shape != "" && chance(0.3)) return "softmax(" full(shape, depth + 1) ")"
    if (chance(0.3)) return "pow(" ex(shape, 0, depth + 1) ", " pick("2|3|-1") ")"
    if (chance(0.2)) return "pow(" ex(shape, 1, depth + 1) ", 0.5)"
    if (shape == "") return "sum(" full("D", depth + 1) ")"
    return ex(shape, 1, depth + 1) " / " ex("", 1, depth + 1)
}
# an expression that surely has the whole shape (not a broadcast scalar)
function full(shape, depth,    s) {
    s = find(shape, 0)
    if (s == "") s = shape == "D,K" ? (in_guide ? "gd2" : "lkd") : shape != "D" ? "lk" : in_guide ? "gd" : "pd"
    if (depth > 3) return s
    return pick(s "|tanh(" s ")|" s " + " ex(pick(shape "|"), 0, depth + 1) "|" s " * " ex("", 0, depth + 1))
}
# p[z]: a param of shape [K, shape] indexed by a scalar Categorical latent
function indexed(shape,    i, j, c, P, Z, cz) {
    c = 0; cz = 0
    for (i = 1; i <= ns; i++) {
        if (visible(i) && KD[i] == "param" && SH[i] == (shape == "" ? "K" : "K," shape)) P[++c] = NM[i]
        if (visible(i) && (KD[i] == "latent" || KD[i] == "input") && SP[i] == "cat" && SH[i] == "") Z[++cz] = NM[i]
    }
    if (!c || !cz) return ""
    return P[rnd(c) + 1] "[" Z[rnd(cz) + 1] "]"
}
function netcall(depth,    i, c, C, n, oh) {
    c = 0
    for (i = 1; i <= ns; i++)
        if (KD[i] == "net" && GD[i] == in_guide) C[++c] = NM[i]
    if (!c) return ""
    n = C[rnd(c) + 1]
    if (n != "fk") return n "(" full("D", depth + 1) ")"
    # a net of input size D + K: concat with a one-hot class when there is one
    oh = onehot("K")
    return n "(concat(" full("D", depth + 1) ", " (oh != "" ? oh : full("K", depth + 1)) "))"
}
# one_hot(y) of a visible Categorical of shape "" (for "K") or "D" (for "D,K")
function onehot(shape,    i, c, C, want) {
    want = shape == "K" ? "" : "D"
    c = 0
    for (i = 1; i <= ns; i++)
        if (visible(i) && (KD[i] == "latent" || KD[i] == "observed") && SP[i] == "cat" && SH[i] == want)
            C[++c] = NM[i]
    return c ? "one_hot(" C[rnd(c) + 1] ")" : ""
}

# ------------------------------------------------------- distributions
# "Dist(args)" for a variable of shape; sets DSUP to the value support.
function dist(shape, latent,    r) {
    r = rnd(latent ? 11 : 10)
    if (r == 0) { DSUP = "real"; return "Normal(" ex(shape, 0, 0) ", " ex(pick(shape "|"), 1, 0) ")" }
    if (r == 1) { DSUP = "real"; return "Laplace(" ex(shape, 0, 0) ", " ex(shape, 1, 0) ")" }
    if (r == 2) { DSUP = "pos"; return "LogNormal(" ex(shape, 0, 0) ", " ex("", 1, 0) ")" }
    if (r == 3) { DSUP = "pos"; return "Gamma(" ex(shape, 1, 0) ", " ex(shape, 1, 0) ")" }
    if (r == 4) { DSUP = "nonneg"; return "Exponential(" ex(shape, 1, 0) ")" }
    if (r == 5) { DSUP = "unit"; return "Beta(" ex(shape, 1, 0) ", " ex("", 1, 0) ")" }
    if (r == 6) { DSUP = "bin"; return "Bernoulli(" pick("probs = sigmoid(X)|logits = X|sigmoid(X)") ")" }
    if (r == 7) {
        DSUP = "cat"
        if (chance(0.3)) return "Categorical(probs = ps)"   # a simplex row, shared
        return "Categorical(logits = " catarg(shape) ")"
    }
    if (r == 8) { DSUP = "count"; return "Poisson(" ex(shape, 1, 0) ")" }
    if (r == 9) { DSUP = "unit"; return "ContinuousBernoulli(" pick("probs = sigmoid(X)|logits = X") ")" }
    # bounds around [0, 1], so that a Beta guide stays inside them
    DSUP = "interval"; return "Uniform(-1 - softplus(" ex(shape, 0, 0) "), 2 + softplus(" ex(shape, 0, 0) "))"
}
function catarg(shape,    i, s, want) {
    want = shape == "" ? "K" : shape ",K"
    s = shape == "D" ? pick("lk|lkd") : "lk"
    for (i = 1; i <= ns; i++)
        if (visible(i) && KD[i] == "param" && (SH[i] == want || SH[i] == "K") && chance(0.5)) s = NM[i]
    return s
}

# -------------------------------------------------------------- a model
function model(path,    i, k, nparam, nl, no, s, shape, con, init, sup, nm, g, line) {
    ns = 0; in_guide = 0
    print "// generated by tests/fuzz/generate.awk" > path
    k = 2 + rnd(3); print "const K = " k ";" > path; decl("K", "const", "", "pos", "")
    k = 1 + rnd(3); print "const D = " k ";" > path; decl("D", "const", "", "pos", "")
    print "const H = " (2 + rnd(4)) ";" > path; decl("H", "const", "", "pos", "")
    print "param lk[K];" > path; decl("lk", "param", "K", "real", "")
    print "param lkd[D, K];" > path; decl("lkd", "param", "D,K", "real", "")
    print "param pd[D];" > path; decl("pd", "param", "D", "real", "")
    print "param ps[K] : simplex;" > path; decl("ps", "param", "K", "real", ": simplex")
    nparam = 1 + rnd(4)
    for (i = 1; i <= nparam; i++) {
        shape = pick("|D|K|K,D|D,D|D,K")
        con = pick("|||: positive|: unit")
        if (shape ~ /K/ && chance(0.3)) con = ": simplex"
        init = ""
        if (con == "") init = pick("| = 0.5| = -1| = normal(0, 1)| = uniform(-1, 1)")
        if (con == ": positive") init = pick("| = 2| = uniform(0.5, 3)| = uniform(0, 1)")
        if (con == ": unit") init = pick("| = 0.3| = uniform(0.2, 0.8)")
        nm = "p" i
        print "param " nm brk(shape) (con == "" ? "" : " " con) init ";" > path
        decl(nm, "param", shape, con == ": positive" ? "pos" : con == ": unit" ? "unit" : "real", con)
    }
    if (chance(0.4)) {   # inputs: real columns and a class
        print "input u[D];" > path; decl("u", "input", "D", "real", "")
        if (chance(0.5)) { print "input cy : category(K);" > path; decl("cy", "input", "", "cat", "") }
    }
    if (chance(0.3)) { print "net fk = " pick("linear(D + K, D)|mlp(D + K, H, D)") ";" > path; decl("fk", "net", "D", "real", "") }
    if (chance(0.4)) {
        print "net f = " pick("mlp(D, H, D, act = tanh)|linear(D, D)|mlp(D, H, H, D, out = softplus)") ";" > path
        decl("f", "net", "D", "real", "")
    }
    if (chance(0.2)) {   # a Gaussian mixture (EM's pattern) or a near miss
        print "param mu[K, D];" > path; decl("mu", "param", "K,D", "real", "")
        s = pick("exp(ls[c])|ls[c]|sqrt(ls[c])|exp(0.5 * ls[c])|sqrt(exp(ls[c]))|exp(ls[c]) + 1")
        print "param ls[K, D]" (s ~ /^(ls|sqrt\(ls)/ ? " : positive" : "") ";" > path
        decl("ls", "param", "K,D", s ~ /^(ls|sqrt\(ls)/ ? "pos" : "real", "")
        print "latent c ~ Categorical(" pick("logits = lk|probs = ps|probs = p1") ");" > path
        decl("c", "latent", "", "cat", "")
        print "observed xm[D] ~ Normal(mu[c], " s ");" > path
        decl("xm", "observed", "D", "real", "")
    }
    nl = rnd(3); no = 1 + rnd(2)
    for (i = 1; i <= nl + no; i++) {
        if (chance(0.25)) {
            shape = pick("|D")
            print "let h" i " = " ex(shape, 0, 1) ";" > path
            decl("h" i, "let", shape, "real", "")
        }
        shape = pick("|D|D|D,K")
        s = dist(shape, i <= nl)
        gsub(/X/, ex(shape, 0, 1), s)
        nm = (i <= nl ? "z" : "x") i
        print (i <= nl ? "latent " : "observed ") nm brk(shape) " ~ " s ";" > path
        decl(nm, i <= nl ? "latent" : "observed", shape, DSUP, "")
    }
    if (nl && chance(0.6)) {
        in_guide = 1
        g = pick("guide {|guide local {")
        print g > path
        print "  param gd[D];" > path; decl("gd", "param", "D", "real", "")
        print "  param gd2[D, K];" > path; decl("gd2", "param", "D,K", "real", "")
        if (chance(0.5)) { print "  param g1[D];" > path; decl("g1", "param", "D", "real", "") }
        if (chance(0.5)) { print "  param g2 : positive = 0.5;" > path; decl("g2", "param", "", "pos", ": positive") }
        if (chance(0.3)) { print "  net e = " pick("linear(D, D)|mlp(D, H, D)") ";" > path; decl("e", "net", "D", "real", "") }
        for (i = 1; i <= ns; i++) {
            if (KD[i] != "latent" || GD[i] || (!chance(0.7) && SP[i] != "count")) continue
            shape = SH[i]; sup = SP[i]
            if (sup == "real") s = pick("Normal(#A, #P)|Laplace(#A, #P)|Normal(#A, 1)")
            else if (sup == "pos") s = pick("LogNormal(#A, #P)|Gamma(#P, #P)")
            else if (sup == "nonneg") s = pick("Gamma(#P, #P)|Exponential(#P)|LogNormal(#A, 1)")
            else if (sup == "unit") s = pick("Beta(#P, #P)")
            else if (sup == "interval") s = pick("Beta(#P, #P)")
            else if (sup == "bin") s = pick("Bernoulli(logits = #A)|Bernoulli(probs = sigmoid(#A))")
            else s = pick("Categorical(logits = #C)|Categorical(logits = #C)|Poisson(#P)")
            if (sup == "count" || sup == "cat") {
                if (index(s, "#C")) {
                    print "  param q" i brk(shape == "D" ? "D, K" : "K") ";" > path
                    decl("q" i, "param", shape == "D" ? "D,K" : "K", "real", "")
                    sub(/#C/, "q" i, s)
                }
            }
            while (index(s, "#A")) { line = ex(shape, 0, 1); sub(/#A/, line, s) }
            while (index(s, "#P")) { line = ex(pick(shape "|"), 1, 1); sub(/#P/, line, s) }
            print "  " NM[i] " ~ " s ";" > path
            SM[i] = 1
        }
        print "}" > path
        in_guide = 0
    }
    close(path)
}

BEGIN {
    for (n = 1; n <= count; n++) {
        name = sprintf("g%04d.vlm", n)
        model(out "/" name)
        print name " generated" > (out "/index.gen")
    }
    close(out "/index.gen")
}
