# The README's commands. CMake does the real work; see CMakeLists.txt.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	@scripts/deps.sh

# Configuring again is cheap and recovers from an earlier failed configure.
configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Builds and runs the main example: prints a summary, writes memscope-report.json
# and the dashboard memscope-report.html.
demo: build
	$(BUILD)/examples/quickstart

# Builds and runs every test under ctest.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Builds the benchmarks in Release and prints their figures.
bench: build
	scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
