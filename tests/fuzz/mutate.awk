# mutate.awk — deterministic mutants of .vlm models for tests/suites/fuzz_compile.sh.
# Reads every model file given, then writes ROUNDS mutants of each (round
# robin over the files) as OUT/mNNNN.vlm and one line per mutant to
# OUT/index.mut: "mNNNN.vlm SOURCE op op ...". Usage:
#   awk -v seed=S -v rounds=R -v out=DIR -f mutate.awk a.vlm b.vlm ...
# The random numbers come from a Park-Miller generator written here (not
# awk's rand()), so every awk (mawk, gawk, busybox) makes the same mutants.
# It does not run vlmc.

function rnd(n) { seed = (seed * 16807) % 2147483647; return int(seed % n) }
function pick(list,    a, n) { n = split(list, a, " "); return a[rnd(n) + 1] }

# tokens of one line (a trailing // comment dropped): T[1..return]
function tokenize(s, T,    n, t) {
    sub(/\/\/.*/, "", s)
    n = 0
    while (length(s) > 0) {
        if (match(s, /^[ \t]+/)) { s = substr(s, RLENGTH + 1); continue }
        if (match(s, /^[A-Za-z_][A-Za-z0-9_]*/) || match(s, /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?/))
            t = substr(s, 1, RLENGTH)
        else t = substr(s, 1, 1)
        T[++n] = t
        s = substr(s, length(t) + 1)
    }
    return n
}
function join(T, n,    s, i) { s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") T[i]; return s }
function is_ident(t) { return t ~ /^[A-Za-z_][A-Za-z0-9_]*$/ }
function is_num(t) { return t ~ /^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/ }
function is_code(s) { return s ~ /[;{}]/ }

# a random line index with code on it, or 0
function code_line(    i, tries) {
    for (tries = 0; tries < 20; tries++) { i = rnd(n) + 1; if (is_code(L[i])) return i }
    for (i = 1; i <= n; i++) if (is_code(L[i])) return i
    return 0
}
function del_line(k,    i) { for (i = k; i < n; i++) L[i] = L[i + 1]; delete L[n]; n-- }
function ins_line(k, s,    i) { for (i = n; i >= k; i--) L[i + 1] = L[i]; L[k] = s; n++ }

# the names the file declares: NAMES[1..nn], LAT[1..nl] (latents)
function scan_names(    i, T, m, j) {
    nn = 0; nl = 0
    for (i = 1; i <= n; i++) {
        m = tokenize(L[i], T)
        for (j = 1; j < m; j++)
            if (T[j] ~ /^(const|param|net|let|latent|observed)$/ && is_ident(T[j + 1])) {
                NAMES[++nn] = T[j + 1]
                if (T[j] == "latent") LAT[++nl] = T[j + 1]
            }
    }
}

# replace, on a random code line, a random token matching re by one from
# list (space-separated); 0 if none
function retoken(re, list,    tries, k, T, m, j, c, C) {
    for (tries = 0; tries < 12; tries++) {
        k = code_line(); if (!k) return 0
        m = tokenize(L[k], T); c = 0
        for (j = 1; j <= m; j++) if (T[j] ~ re) C[++c] = j
        if (!c) continue
        j = C[rnd(c) + 1]
        T[j] = pick(list)
        L[k] = join(T, m)
        return 1
    }
    return 0
}

function mutate(    op, k, T, m, j, i, g0, g1, c, C, z) {
    op = rnd(16)
    if (op == 0) { k = code_line(); if (!k) return ""; del_line(k); return "drop-line" }
    if (op == 1) { k = code_line(); if (!k) return ""; ins_line(k, L[k]); return "dup-line" }
    if (op == 2) {   # swap two adjacent tokens
        k = code_line(); if (!k) return ""
        m = tokenize(L[k], T); if (m < 2) return ""
        j = rnd(m - 1) + 1; z = T[j]; T[j] = T[j + 1]; T[j + 1] = z
        L[k] = join(T, m); return "swap-tokens"
    }
    if (op == 3)
        return retoken("^[0-9]*\\.?[0-9]+([eE][-+]?[0-9]+)?$",
                       "0 1 2 3 0.5 0.999 1.5 10 100 1e9 1e40 1e-45 100000 2147483648") ? "number" : ""
    if (op == 4)
        return retoken("^(Normal|Bernoulli|Categorical|Laplace|LogNormal|Exponential|Gamma|Beta|Uniform|Poisson|ContinuousBernoulli)$",
                       "Normal Bernoulli Categorical Laplace LogNormal Exponential Gamma Beta Uniform Poisson ContinuousBernoulli") ? "dist" : ""
    if (op == 5) {   # delete a guide statement
        g0 = 0; g1 = 0
        for (i = 1; i <= n; i++) if (L[i] ~ /^[ \t]*guide/) { g0 = i; break }
        if (!g0) return ""
        for (i = g0 + 1; i <= n; i++) if (L[i] ~ /}/) { g1 = i; break }
        c = 0
        for (i = g0 + 1; i < g1; i++) if (L[i] ~ /;/) C[++c] = i
        if (!c) return ""
        del_line(C[rnd(c) + 1]); return "drop-guide-stmt"
    }
    if (op == 6) {   # a name replaced by another declared name
        scan_names(); if (nn < 2) return ""
        for (i = 1; i <= nn; i++) z = z (i > 1 ? " " : "") NAMES[i]
        return retoken("^[a-z_][A-Za-z0-9_]*$", z) ? "rename" : ""
    }
    if (op == 7)
        return retoken("^(exp|log|log1p|sqrt|sigmoid|softplus|tanh|relu|abs|elu|sum)$",
                       "exp log log1p sqrt sigmoid softplus tanh relu abs elu sum") ? "function" : ""
    if (op == 8) return retoken("^[-+*/@]$", "+ - * / @") ? "operator" : ""
    if (op == 9)
        return retoken("^(const|param|net|let|latent|observed)$",
                       "param let latent observed latent observed") ? "keyword" : ""
    if (op == 10) {  # a constraint (and maybe an initializer) on a param
        for (i = 1; i <= n; i++) if (L[i] ~ /^[ \t]*param[ \t]/) C[++c] = i
        if (!c) return ""
        k = C[rnd(c) + 1]
        m = tokenize(L[k], T); if (T[m] != ";") return ""
        for (j = 1; j <= m; j++) if (T[j] == ":" || T[j] == "=") break
        m = j - 1
        z = join(T, m) " " pick(": : : :positive :unit :simplex") " " \
            pick("; ; =0.5; =2; =-1; =uniform(0.1,0.9); =uniform(1,20); =uniform(-1,1); =normal(0,1);")
        gsub(/:positive/, ": positive", z); gsub(/:unit/, ": unit", z); gsub(/:simplex/, ": simplex", z)
        gsub(/=/, " = ", z); L[k] = z; return "constraint"
    }
    if (op == 11)
        return retoken("^(identity|relu|tanh|sigmoid|softplus|elu)$",
                       "identity relu tanh sigmoid softplus elu") ? "activation" : ""
    if (op == 12)
        return retoken("^(probs|logits|loc|scale|rate|concentration|alpha|beta|low|high)$",
                       "probs logits loc scale rate concentration alpha beta low high") ? "keyword-arg" : ""
    if (op == 13) {  # add a guide sample for a latent (or a whole guide)
        scan_names(); if (!nl) return ""
        z = LAT[rnd(nl) + 1] " ~ " pick("Normal(0,1) Normal(1,2) Gamma(2,2) LogNormal(0,1) Exponential(1) Beta(2,2) Bernoulli(0.5) Categorical(logits=la) Uniform(0,1) Laplace(0,1) Poisson(3)") ";"
        for (i = 1; i <= n; i++) if (L[i] ~ /^[ \t]*guide/) { g0 = i; break }
        if (g0) {
            for (i = g0; i <= n; i++) if (L[i] ~ /}/) { g1 = i; break }
            if (!g1) return ""
            ins_line(g1, "  " z)
        } else ins_line(n + 1, "guide " pick("{ {} local{") " " z " }")
        return "guide-sample"
    }
    if (op == 14) {  # a dims list changed
        return retoken("^[A-Z][A-Z0-9_]*$", "1 2 3 N K D Z H") ? "dim" : ""
    }
    if (op == 15) {  # a new declaration that reads an existing name
        scan_names(); if (!nn) return ""
        z = NAMES[rnd(nn) + 1]
        c = pick("latent observed let")
        if (c == "let") z = "let u = " pick("X exp(X) X+1 sum(X) -X X*X") ";"
        else z = c " u " pick("~ ~ [2]~") " " pick("Normal(X,1) Normal(0,exp(X)) Bernoulli(logits=X) Poisson(exp(X)) Gamma(2,exp(X))") ";"
        gsub(/X/, NAMES[rnd(nn) + 1], z)
        ins_line(rnd(n + 1) + 1, z)
        return "new-decl"
    }
    return ""
}

FNR == 1 { nf++; FILE[nf] = FILENAME; FN[nf] = 0 }
{ FN[nf]++; SRC[nf, FN[nf]] = $0 }

END {
    id = 0
    for (r = 1; r <= rounds; r++)
        for (f = 1; f <= nf; f++) {
            n = FN[f]
            for (i = 1; i <= n; i++) L[i] = SRC[f, i]
            ops = ""
            k = 1 + rnd(3)   # 1 to 3 mutations
            for (t = 0; t < k; t++) { o = mutate(); if (o != "") ops = ops " " o }
            if (ops == "") continue
            name = sprintf("m%04d.vlm", ++id)
            path = out "/" name
            for (i = 1; i <= n; i++) print L[i] > path
            close(path)
            print name " " FILE[f] ops > (out "/index.mut")
        }
    close(out "/index.mut")
}
