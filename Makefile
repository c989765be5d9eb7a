# cycle and test are the two commands the README opens with; unit is the quick check while you work.
# Each does its own set-up on a fresh machine.
.PHONY: cycle test unit setup clean

cycle: ## run a full patch cycle on the simulated account (demo fleet) -> out/
	@scripts/setup.sh
	@.venv/bin/tagpatch run --fleet $(or $(FLEET),fleets/demo.yaml) --out $(or $(OUT),out) $(if $(INPUT),--input '$(INPUT)')

test: ## every test and check (the same command CI runs)
	@scripts/check.sh

unit: ## the unit tests without the slow ones: the quick check while you work
	@scripts/setup.sh
	@.venv/bin/python -m pytest -n 2 -m "not slow" tests/unit

setup:
	@scripts/setup.sh --with-sam

clean:
	rm -rf out .aws-sam .mypy_cache .pytest_cache .ruff_cache
