// Savina chameneos for CAF 0.17: C chameneos meet through a mall N times.
// A chameneo sends (meet, color) to the mall; the mall parks the first and
// forwards the second's meet to it; the parked one takes the complement
// color, sends (change, color) to the other, and both go back to the mall.
// After N meetings the mall answers meets with exit; each chameneo then
// reports done and stops; the mall tells main once all C reported.
// Usage: chameneos REPS C N. Counts 4N messages per rep.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using meet_atom = atom_constant<atom("meet")>;
using change_atom = atom_constant<atom("change")>;
using exit_atom = atom_constant<atom("exit")>;
using done_atom = atom_constant<atom("done")>;
using start_atom = atom_constant<atom("start")>;

static int complement(int a, int b) { return a == b ? a : 3 - a - b; }

struct mall_state {
	int left = 0, live = 0;
	long total = 0; // meetings reported; each meeting counts twice
	actor waiting;
	int waiting_color = 0;
};

static behavior mall_actor(stateful_actor<mall_state> *self, actor main, int c, int n)
{
	self->state.left = n;
	self->state.live = c;
	return {
		[=](meet_atom, int color, actor who) {
			auto &s = self->state;
			if (s.left == 0) {
				self->send(who, exit_atom::value);
			} else if (!s.waiting) {
				s.waiting = who;
				s.waiting_color = color;
			} else {
				self->send(s.waiting, meet_atom::value, color, who);
				s.waiting = nullptr;
				s.left--;
			}
		},
		[=](done_atom, int meetings) {
			auto &s = self->state;
			s.total += meetings;
			if (--s.live > 0)
				return;
			if (s.total != 2L * n)
				std::fprintf(stderr, "chameneos: %ld meetings, want %ld\n", s.total, 2L * n);
			self->send(main, done_atom::value);
		},
	};
}

struct cham_state {
	int color = 0, meetings = 0;
};

static behavior cham_actor(stateful_actor<cham_state> *self, actor mall, int color)
{
	self->state.color = color;
	auto me = actor_cast<actor>(self);
	return {
		[=](start_atom) { self->send(mall, meet_atom::value, self->state.color, me); },
		[=](meet_atom, int other_color, actor other) {
			auto &s = self->state;
			s.color = complement(s.color, other_color);
			s.meetings++;
			self->send(other, change_atom::value, s.color);
			self->send(mall, meet_atom::value, s.color, me);
		},
		[=](change_atom, int color) {
			auto &s = self->state;
			s.color = color;
			s.meetings++;
			self->send(mall, meet_atom::value, s.color, me);
		},
		[=](exit_atom) {
			self->send(mall, done_atom::value, self->state.meetings);
			self->quit();
		},
	};
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		std::fprintf(stderr, "usage: %s REPS C N\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]), c = std::atoi(argv[2]), n = std::atoi(argv[3]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto mall = sys.spawn(mall_actor, actor_cast<actor>(self), c, n);
		std::vector<actor> chams;
		for (int i = 0; i < c; i++)
			chams.push_back(sys.spawn(cham_actor, mall, i % 3));
		auto t0 = std::chrono::steady_clock::now();
		for (auto &x : chams)
			self->send(x, start_atom::value);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		self->send_exit(mall, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT chameneos %.0f msgs/s\n", 4.0 * n / secs[secs.size() / 2]);
	return 0;
}
