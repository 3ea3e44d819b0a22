# Local Kafka (KRaft) + Redis, see deploy/stack.sh. Included by the main Makefile,
# which defines `install` (the venv: the Kafka health check runs on its aiokafka).
#   make up                      one Kafka (the pom's version, 3.9.1) on 9092, and Redis
#   make up SECURE=1             also SASL_SSL (9094), SSL with client certificate (9095) and
#                                SASL_PLAINTEXT (9096) listeners (SCRAM, PLAIN, OAUTHBEARER with
#                                unsigned test tokens); settings in .stack/kafka/secure.env
#   make up BROKERS=3            three KRaft brokers: 9092, 9102, 9112 (replication factor 3)
#   make up KAFKA_VERSION=4.1.1  another Kafka version (jars kept per version)
# The knobs combine; one left out accepts the stack already running.
.PHONY: up down status

up: install
	STACK_SECURE=$(SECURE) STACK_BROKERS=$(BROKERS) STACK_KAFKA_VERSION=$(KAFKA_VERSION) bash deploy/stack.sh up

# `make down WIPE=1` also deletes the Kafka and Redis data (not the jars).
down:
	bash deploy/stack.sh down $(if $(WIPE),--wipe)

status:
	bash deploy/stack.sh status
