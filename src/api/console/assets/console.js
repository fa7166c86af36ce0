// trunkguard console: the recording player. The page works without this file (the browser's own
// audio controls, the forms); with it, ±10 s, speed, and which voice to hear: the WAV's left
// channel is the agent (PBX leg), the right one the customer (carrier leg). Web Audio splits the
// two channels and sends the chosen one to both ears (or each to its own side for "both").
(function () {
  'use strict';

  function setUp(root) {
    var audio = root.querySelector('audio');
    if (!audio) return;
    var context = null;
    var splitter = null;
    var merger = null;
    var analyser = null;
    var channel = 'both';
    var levels = null;
    var meter = root.querySelector('meter');

    function route() {
      root.setAttribute('data-channel', channel);
      if (!splitter) return;
      splitter.disconnect();
      if (channel === 'agent') {
        splitter.connect(merger, 0, 0);
        splitter.connect(merger, 0, 1);
      } else if (channel === 'customer') {
        splitter.connect(merger, 1, 0);
        splitter.connect(merger, 1, 1);
      } else {
        splitter.connect(merger, 0, 0);
        splitter.connect(merger, 1, 1);
      }
    }

    function level() {
      if (!analyser) return;
      analyser.getFloatTimeDomainData(levels);
      var sum = 0;
      for (var i = 0; i < levels.length; i++) sum += levels[i] * levels[i];
      if (meter) meter.value = Math.min(1, Math.sqrt(sum / levels.length) * 4);
      if (!audio.paused) window.requestAnimationFrame(level);
    }

    // The graph is made on the first play or channel choice (a person's gesture: browsers
    // start audio contexts only then).
    function graph() {
      if (context) return;
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      context = new Context();
      var source = context.createMediaElementSource(audio);
      splitter = context.createChannelSplitter(2);
      merger = context.createChannelMerger(2);
      analyser = context.createAnalyser();
      analyser.fftSize = 2048;
      levels = new Float32Array(analyser.fftSize);
      source.connect(splitter);
      merger.connect(analyser);
      analyser.connect(context.destination);
      route();
      // What is heard, for whoever wants to look (the level meter, a test).
      window.tgPlayer = { audio: audio, context: context, analyser: analyser };
    }

    audio.addEventListener('play', function () {
      graph();
      if (context && context.state === 'suspended') context.resume();
      window.requestAnimationFrame(level);
    });

    var play = root.querySelector('#play');
    if (play) {
      play.addEventListener('click', function () {
        if (audio.paused) audio.play(); else audio.pause();
      });
      var show = function () {
        var playing = !audio.paused;
        play.textContent = play.getAttribute(playing ? 'data-pause' : 'data-play');
      };
      audio.addEventListener('play', show);
      audio.addEventListener('pause', show);
      audio.addEventListener('ended', show);
    }

    root.querySelectorAll('button[data-seek]').forEach(function (b) {
      b.addEventListener('click', function () {
        var to = audio.currentTime + Number(b.getAttribute('data-seek'));
        var end = isFinite(audio.duration) ? audio.duration : to;
        audio.currentTime = Math.max(0, Math.min(end, to));
      });
    });

    var canvas = root.querySelector('canvas#waveform');
    if (canvas) waveform(canvas, audio);

    var speed = root.querySelector('#speed');
    if (speed) {
      speed.addEventListener('change', function () {
        audio.playbackRate = Number(speed.value) || 1;
      });
    }

    root.querySelectorAll('input[name="channel"]').forEach(function (r) {
      r.addEventListener('change', function () {
        if (!r.checked) return;
        channel = r.value;
        graph();
        route();
      });
    });
    route();
  }

  // Both channels' waveform, drawn from the whole file (decoded by the browser): the agent in
  // the upper half, the customer in the lower; the played position as a line; a click seeks.
  function waveform(canvas, audio) {
    var Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    if (!Offline || !window.fetch) return;
    window.fetch(canvas.getAttribute('data-src'), { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.arrayBuffer(); })
      .then(function (bytes) { return new Offline(2, 1, 8000).decodeAudioData(bytes); })
      .then(function (buffer) {
        var g = canvas.getContext('2d');
        var w = canvas.width;
        var h = canvas.height;
        var half = h / 2;
        var peaks = [];
        var columns = [];
        for (var ch = 0; ch < 2; ch++) {
          var data = buffer.getChannelData(Math.min(ch, buffer.numberOfChannels - 1));
          var per = Math.max(1, Math.floor(data.length / w));
          var col = [];
          var peak = 0;
          for (var x = 0; x < w; x++) {
            var lo = 0;
            var hi = 0;
            for (var i = x * per; i < Math.min(data.length, (x + 1) * per); i++) {
              if (data[i] < lo) lo = data[i];
              if (data[i] > hi) hi = data[i];
            }
            col.push([lo, hi]);
            peak = Math.max(peak, hi, -lo);
          }
          columns.push(col);
          peaks.push(peak);
        }
        function draw() {
          g.clearRect(0, 0, w, h);
          g.fillStyle = '#f2f4f7';
          g.fillRect(0, 0, w, h);
          var colours = ['#0b57a4', '#1d6b34'];
          for (var ch = 0; ch < 2; ch++) {
            var mid = half * ch + half / 2;
            g.fillStyle = colours[ch];
            for (var x = 0; x < w; x++) {
              var c = columns[ch][x];
              var top = mid - c[1] * (half / 2 - 2);
              var bottom = mid - c[0] * (half / 2 - 2);
              g.fillRect(x, top, 1, Math.max(1, bottom - top));
            }
          }
          g.fillStyle = '#c9ced6';
          g.fillRect(0, half, w, 1);
          if (isFinite(audio.duration) && audio.duration > 0) {
            g.fillStyle = '#a4161a';
            g.fillRect(Math.round(audio.currentTime / audio.duration * w), 0, 2, h);
          }
        }
        draw();
        audio.addEventListener('timeupdate', draw);
        audio.addEventListener('loadedmetadata', draw);
        canvas.addEventListener('click', function (e) {
          if (!isFinite(audio.duration)) return;
          var box = canvas.getBoundingClientRect();
          audio.currentTime = (e.clientX - box.left) / box.width * audio.duration;
        });
        canvas.setAttribute('data-peaks', peaks.map(function (p) { return p.toFixed(3); }).join(' '));
      })
      .catch(function () { canvas.setAttribute('data-failed', 'true'); });
  }

  // A table that refreshes itself (live calls): its rows are fetched again every few seconds
  // and put in place, unless something in it has the focus (a button about to be pressed). An
  // answer that is not a fragment means the session ended: the page reloads (to the sign-in).
  function refresh(body) {
    var url = body.getAttribute('data-refresh');
    var every = Number(body.getAttribute('data-every')) || 3000;
    window.setInterval(function () {
      if (body.contains(document.activeElement)) return;
      window.fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok || r.headers.get('X-Console-Fragment') !== '1') {
          window.location.reload();
          return null;
        }
        return r.text();
      }).then(function (html) {
        if (html !== null && html !== undefined) {
          body.innerHTML = html;
          body.setAttribute('data-refreshed', String(Date.now()));
        }
      }).catch(function () { /* the next round tries again */ });
    }, every);
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-player]').forEach(setUp);
    document.querySelectorAll('[data-refresh]').forEach(refresh);
  });
})();
