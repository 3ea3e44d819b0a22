# Local Kafka (KRaft) + Redis, see deploy/stack.sh. Included by the main Makefile,
# which defines `install` (the venv: the Kafka health check runs on its aiokafka).
.PHONY: up down status

up: install
	bash deploy/stack.sh up

# `make down WIPE=1` also deletes the Kafka and Redis data (not the jars).
down:
	bash deploy/stack.sh down $(if $(WIPE),--wipe)

status:
	bash deploy/stack.sh status
