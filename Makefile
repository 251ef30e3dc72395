# vlm — build, test, demo. Out-of-tree objects under $(BUILD)/.
# `make` builds bin/vlmc and lib/libvlm.a; `make test` runs every suite.

BUILD   ?= build
BINDIR  ?= bin
LIBDIR  ?= lib
SAN     ?=
CC      ?= cc

DEPS_PKGS := flex bison libopenblas-dev libdnnl-dev libcunit1-dev zlib1g-dev libpng-dev pkg-config libopenmpi-dev openmpi-bin
DATA_PKGS := dataset-fashion-mnist

# Flags of the Debian libraries, read when this Makefile is read. `make demo`
# installs the packages first and then builds in a sub-make, so a fresh
# machine reads them after the install. Where pkg-config cannot answer, the
# names Debian links by are used. Every object, the link lines and the flags
# that cc.c bakes into vlmc depend on $(FLAGS_STAMP), which is rewritten only
# when the flags change: a build made with other flags is rebuilt, never kept.
PKG_CONFIG ?= pkg-config
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags openblas libpng zlib 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs openblas libpng zlib 2>/dev/null || echo -lopenblas -lpng16 -lz)
PKG_LIBS   := $(if $(strip $(PKG_LIBS)),$(PKG_LIBS),-lopenblas -lpng16 -lz)
# oneDNN (the nets' GEMMs): Debian's libdnnl-dev ships no .pc file, so the
# fallback is the usual case; it runs on libgomp (DNNL_RUNTIME_OMP), whose
# thread count the runtime sets, so that is linked too.
DNNL_LIBS  := $(shell $(PKG_CONFIG) --libs dnnl 2>/dev/null || echo -ldnnl)
DNNL_LIBS  := $(if $(strip $(DNNL_LIBS)),$(DNNL_LIBS),-ldnnl)
PKG_LIBS   := $(PKG_LIBS) $(DNNL_LIBS) -lgomp
# OpenMPI (runtime/mpi.c: data-parallel train, EM and eval under mpirun):
# every trainer links it; run alone it never calls MPI_Init.
# Where pkg-config cannot answer (or answers nothing), Debian's paths.
MPI_INC    := -I/usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/openmpi/include
MPI_CFLAGS := $(shell $(PKG_CONFIG) --cflags ompi-c 2>/dev/null || echo $(MPI_INC))
MPI_CFLAGS := $(if $(strip $(MPI_CFLAGS)),$(MPI_CFLAGS),$(MPI_INC))
MPI_LIBS   := $(shell $(PKG_CONFIG) --libs ompi-c 2>/dev/null || echo -lmpi)
MPI_LIBS   := $(if $(strip $(MPI_LIBS)),$(MPI_LIBS),-lmpi)
PKG_CFLAGS := $(PKG_CFLAGS) $(MPI_CFLAGS)
PKG_LIBS   := $(PKG_LIBS) $(MPI_LIBS)
CUNIT_LIBS := $(shell $(PKG_CONFIG) --libs cunit 2>/dev/null || echo -lcunit)
CUNIT_LIBS := $(if $(strip $(CUNIT_LIBS)),$(CUNIT_LIBS),-lcunit)

ifneq ($(SAN),)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
# vector units of this machine for the runtime and generated trainers (both
# are built where they run); `make MARCH=` for a portable build
MARCH   ?= -march=native
# math without errno or trapping semantics, so loops over sqrt/compares vectorize
FPFLAGS := -fno-math-errno -fno-trapping-math -fvect-cost-model=dynamic
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(MARCH) $(FPFLAGS) $(SANFLAGS) $(PKG_CFLAGS) \
             -Iruntime -Icompiler -I$(BUILD)/grammar -MMD -MP
LDLIBS  = $(PKG_LIBS) -lm -lpthread

ROOT := $(CURDIR)

# ------------------------------------------------------------- sources
RT_SRC   ?= $(sort $(wildcard runtime/*.c))
RT_OBJ   := $(RT_SRC:%.c=$(BUILD)/%.o)
CC_SRC   := $(sort $(filter-out compiler/main.c,$(wildcard compiler/*.c)))
CC_OBJ   := $(CC_SRC:%.c=$(BUILD)/%.o) $(BUILD)/grammar/parser.o $(BUILD)/grammar/lexer.o
UT_SRC   ?= $(sort $(wildcard tests/unit/test_*.c))
UT_OBJ   := $(UT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/unit/suites.o $(BUILD)/tests/unit/unit_main.o

LIBVLM   := $(LIBDIR)/libvlm.a
VLMC     := $(BINDIR)/vlmc
UNIT     := $(BUILD)/tests/unit_tests

# Where vlmc finds the runtime when it compiles a generated trainer
# (overridable at run time by $VLM_INCLUDE / $VLM_LIB).
VLMC_DEFS = -DVLM_DEFAULT_INCLUDE='"$(ROOT)/runtime"' \
            -DVLM_DEFAULT_LIB='"$(abspath $(LIBVLM))"' \
            -DVLM_DEFAULT_CFLAGS='"$(strip $(MARCH) $(FPFLAGS) $(SANFLAGS) $(PKG_CFLAGS))"' \
            -DVLM_DEFAULT_LIBS='"$(strip $(SANFLAGS) $(PKG_LIBS) -lm -lpthread)"'

FLAGS_STAMP := $(BUILD)/flags.stamp

.PHONY: all deps check-deps test check-asan demo bench check-long clean FORCE
all: check-deps $(VLMC) $(LIBVLM)

# ------------------------------------------------------------- flags stamp
# One line per flag set; the file's time changes only when a line does.
FLAGS_NOW = cc $(CC) | cflags $(ALL_CFLAGS) | defs $(VLMC_DEFS) | libs $(LDLIBS) | cunit $(CUNIT_LIBS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FLAGS_NOW))' > $@.new; \
	if cmp -s $@.new $@; then rm -f $@.new; else mv -f $@.new $@; fi
FORCE:

# ------------------------------------------------------------- grammar
# grouped targets (&:): one bison run makes both files, also under -j
$(BUILD)/grammar/parser.c $(BUILD)/grammar/parser.h &: grammar/parser.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/grammar/parser.h -o $(BUILD)/grammar/parser.c $<

$(BUILD)/grammar/lexer.c $(BUILD)/grammar/lexer.h &: grammar/lexer.l
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/grammar/lexer.h -o $(BUILD)/grammar/lexer.c $<

# generated scanner/parser code is not held to -Wextra's unused-function set
$(BUILD)/grammar/%.o: $(BUILD)/grammar/%.c $(BUILD)/grammar/parser.h $(BUILD)/grammar/lexer.h Makefile $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -Wno-unused-function -Wno-sign-compare -c $< -o $@

$(CC_OBJ) $(BUILD)/compiler/main.o: | $(BUILD)/grammar/parser.h $(BUILD)/grammar/lexer.h

# ------------------------------------------------------------- objects
# cc.c bakes in where the runtime lives (header, library, link flags)
$(BUILD)/compiler/cc.o: compiler/cc.c Makefile $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(VLMC_DEFS) -c $< -o $@

# objects depend on the Makefile and the flags stamp: a change of flags rebuilds them
$(BUILD)/%.o: %.c Makefile $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBVLM): $(RT_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(VLMC): $(CC_OBJ) $(BUILD)/compiler/main.o $(FLAGS_STAMP) | $(LIBVLM)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $(CC_OBJ) $(BUILD)/compiler/main.o -lm

# ------------------------------------------------------------- unit tests
# Each tests/unit/test_NAME.c defines `void vlm_test_NAME(void)` which adds
# its CUnit suite; this list is generated so no file has to be edited.
$(BUILD)/tests/unit/suites.c: $(UT_SRC) Makefile
	@mkdir -p $(@D)
	@{ echo '/* generated by the Makefile */'; \
	   for f in $(notdir $(basename $(UT_SRC))); do n=$${f#test_}; echo "void vlm_test_$$n(void);"; done; \
	   echo 'void vlm_test_register_all(void) {'; \
	   for f in $(notdir $(basename $(UT_SRC))); do n=$${f#test_}; echo "    vlm_test_$$n();"; done; \
	   echo '}'; } > $@

$(BUILD)/tests/unit/suites.o: $(BUILD)/tests/unit/suites.c $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(UNIT): $(UT_OBJ) $(CC_OBJ) $(LIBVLM) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(SANFLAGS) -o $@ $(UT_OBJ) $(CC_OBJ) $(LIBVLM) $(CUNIT_LIBS) $(LDLIBS)

# ------------------------------------------------------------- commands
# A package counts as present only when dpkg says "install ok installed":
# `dpkg -s` also succeeds for a removed package whose config files remain
# (openmpi-bin after `apt-get remove`).
deps:
	@missing=""; for p in $(DEPS_PKGS) $(DATA_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all installed"; fi

check-deps:
	@missing=""; for p in $(DEPS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "error: missing Debian packages:$$missing"; \
	  echo "       run 'make deps' (or: apt-get install -y$$missing)"; exit 1; fi

test: all $(UNIT)
	@BUILD=$(BUILD) BINDIR=$(BINDIR) LIBDIR=$(LIBDIR) UNIT=$(UNIT) SANFLAGS="$(SANFLAGS)" sh tests/run_tests.sh

check-asan:
	$(MAKE) BUILD=build/asan BINDIR=build/asan/bin LIBDIR=build/asan/lib SAN=1 CFLAGS="-O1 -g" test

# The build runs in a sub-make so that it reads the library flags after
# `deps` has installed the packages (this make read them before).
demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh

bench: all
	@sh bench/run.sh

check-long: all
	@sh tests/check_long.sh

clean:
	rm -rf build bin lib

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
